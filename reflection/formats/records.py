"""Validate one raw record (a dict from any container) and turn it into a Sample, and back.

Three record shapes exist: Alpaca (`instruction`/`input`/`output`, optional `system` and
`history`), and two chat shapes: ShareGPT (`conversations` of `from`/`value`) and messages
(`messages` of `role`/`content`, used by OpenAI fine-tuning files and ShareGPT variants).
For chat records the last user→assistant turn becomes instruction/output and earlier turns
go to `history`; the names a file used are kept in `meta["__chat__"]` so export writes them
back unchanged. Fields we do not know are kept in `meta` and written back too.
"""

from __future__ import annotations

from typing import Any

from ..records import Sample

SHAPES = ("alpaca", "sharegpt", "messages")
ALPACA_FIELDS = ("instruction", "input", "output", "system", "history")
STYLE_KEY = "__chat__"  # meta key holding how a chat record named its parts

_USER = {"human", "user"}
_ASSISTANT = {"gpt", "assistant", "chatgpt", "bard", "bing", "model"}
_SYSTEM = {"system"}


class RecordError(ValueError):
    """A record does not fit its shape; the caller adds the file and line/record number."""


def shape_of(record: Any) -> str | None:
    """Which record shape a dict looks like, or None."""
    if not isinstance(record, dict):
        return None
    if "conversations" in record:
        return "sharegpt"
    if "messages" in record:
        return "messages"
    if "instruction" in record:
        return "alpaca"
    return None


def _text(record: dict, name: str, *, required: bool) -> str:
    if name not in record:
        if required:
            raise RecordError(f"missing required field {name!r}")
        return ""
    value = record[name]
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        raise RecordError(f"field {name!r} must be text, not {type_name(value)}")
    return value


def type_name(value: Any) -> str:
    if value is None:
        return "null"
    return {
        bool: "a boolean",
        int: "a number",
        float: "a number",
        str: "text",
        list: "a list",
        dict: "an object",
    }.get(type(value), type(value).__name__)


def _history(value: Any) -> list[list[str]]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise RecordError(
            f"field 'history' must be a list of [user, assistant] pairs, not {type_name(value)}"
        )
    pairs = []
    for i, pair in enumerate(value):
        if not (
            isinstance(pair, list | tuple)
            and len(pair) == 2
            and all(isinstance(t, str) for t in pair)
        ):
            raise RecordError(f"history[{i}] must be a [user, assistant] pair of texts")
        pairs.append([pair[0], pair[1]])
    return pairs


_PLAIN = frozenset(("instruction", "input", "output"))


def sample_from_alpaca(record: dict) -> Sample:
    if record.keys() <= _PLAIN:  # the common record: three texts (checked as below, faster)
        instruction, output = record.get("instruction"), record.get("output")
        text = record.get("input", "")
        if type(instruction) is str and type(output) is str and type(text) is str:
            return Sample(instruction, text, output)
    return Sample(
        instruction=_text(record, "instruction", required=True),
        input=_text(record, "input", required=False),
        output=_text(record, "output", required=True),
        system=_text(record, "system", required=False),
        history=_history(record.get("history")),
        meta={k: v for k, v in record.items() if k not in ALPACA_FIELDS},
    )


def sample_from_chat(record: dict, shape: str) -> Sample:
    key, role_key, content_key = (
        ("conversations", "from", "value")
        if shape == "sharegpt"
        else ("messages", "role", "content")
    )
    turns = record.get(key)
    if not isinstance(turns, list):
        raise RecordError(f"field {key!r} must be a list of turns, not {type_name(turns)}")
    if not turns:
        raise RecordError(f"field {key!r} is empty")
    system = _text(record, "system", required=False)
    names: dict[str, str] = {}
    turn_extras: list[dict] = []
    texts: list[tuple[str, str]] = []  # (user|assistant|system, text)
    for i, turn in enumerate(turns):
        if not isinstance(turn, dict):
            raise RecordError(f"{key}[{i}] must be an object, not {type_name(turn)}")
        role = turn.get(role_key)
        if not isinstance(role, str):
            raise RecordError(f"{key}[{i}] has no {role_key!r} text")
        content = turn.get(content_key)
        if not isinstance(content, str):
            raise RecordError(f"{key}[{i}].{content_key} must be text, not {type_name(content)}")
        lowered = role.lower()
        kind = (
            "user"
            if lowered in _USER
            else "assistant"
            if lowered in _ASSISTANT
            else "system"
            if lowered in _SYSTEM
            else None
        )
        if kind is None:
            raise RecordError(
                f"{key}[{i}] has role {role!r}; expected user/human, assistant/gpt or system"
            )
        names.setdefault(kind, role)
        turn_extras.append({k: v for k, v in turn.items() if k not in (role_key, content_key)})
        texts.append((kind, content))
    if texts[0][0] == "system":
        if system:
            raise RecordError("system prompt given both as a field and as the first turn")
        system = texts[0][1]
        in_turns = True
        texts = texts[1:]
    else:
        in_turns = False
    if any(kind == "system" for kind, _ in texts):
        raise RecordError("a system turn may only come first")
    if len(texts) < 2 or len(texts) % 2:
        raise RecordError(
            f"expected alternating user/assistant turns ending with the assistant, got {len(texts)} turns"
        )
    for i, (kind, _) in enumerate(texts):
        expected = "user" if i % 2 == 0 else "assistant"
        if kind != expected:
            raise RecordError(
                f"turn {i + 1 + in_turns} is from {kind}; expected {expected} (turns must alternate)"
            )
    pairs = [[texts[i][1], texts[i + 1][1]] for i in range(0, len(texts), 2)]
    style = {"shape": shape, "roles": names, "system_in_turns": in_turns}
    if any(turn_extras):
        style["turn_extras"] = turn_extras
    meta = {k: v for k, v in record.items() if k not in (key, "system")}
    meta[STYLE_KEY] = style
    return Sample(
        instruction=pairs[-1][0],
        output=pairs[-1][1],
        system=system,
        history=pairs[:-1],
        meta=meta,
    )


def sample_from_record(record: Any, shape: str) -> Sample:
    """Validate one record of the given shape; RecordError says what is wrong."""
    if not isinstance(record, dict):
        raise RecordError(f"expected an object, got {type_name(record)}")
    found = shape_of(record)
    if found is None:
        expected = (
            "'instruction'"
            if shape == "alpaca"
            else "'conversations'"
            if shape == "sharegpt"
            else "'messages'"
        )
        raise RecordError(f"missing required field {expected}")
    if shape == "alpaca" and found != "alpaca":
        raise RecordError(f"looks like a {found} record in an Alpaca file")
    if shape == "alpaca":
        return sample_from_alpaca(record)
    if found not in ("sharegpt", "messages"):
        raise RecordError(
            f"missing required field {'conversations' if shape == 'sharegpt' else 'messages'!r}"
        )
    return sample_from_chat(record, found)


def _extras(meta: dict) -> dict:
    return {k: v for k, v in meta.items() if k != STYLE_KEY}


def to_alpaca(version: dict, meta: dict) -> dict:
    """An Alpaca record; `system` and `history` only where present, so plain files stay plain."""
    record = {
        "instruction": version["instruction"],
        "input": version["input"],
        "output": version["output"],
    }
    if version.get("system"):
        record["system"] = version["system"]
    if version.get("history"):
        record["history"] = version["history"]
    record.update(_extras(meta))
    return record


def _user_text(version: dict) -> str:
    # Chat formats have no input field: it follows the instruction after a blank line.
    return (
        f"{version['instruction']}\n\n{version['input']}"
        if version["input"]
        else version["instruction"]
    )


def to_chat(version: dict, meta: dict, shape: str) -> dict:
    """A ShareGPT (`conversations`) or messages (`messages`) record, in the source's own style."""
    style = meta.get(STYLE_KEY) or {}
    if style.get("shape") not in (None, shape) and style.get("shape") in ("sharegpt", "messages"):
        style = {}  # written in the other chat shape: use that shape's default names
    roles = (
        {"user": "human", "assistant": "gpt", "system": "system"}
        if shape == "sharegpt"
        else {"user": "user", "assistant": "assistant", "system": "system"}
    )
    roles.update(style.get("roles", {}))
    key, role_key, content_key = (
        ("conversations", "from", "value")
        if shape == "sharegpt"
        else ("messages", "role", "content")
    )
    turns = []
    system_in_turns = style.get("system_in_turns", shape == "messages")
    if version.get("system") and system_in_turns:
        turns.append(("system", version["system"]))
    for user, assistant in version.get("history") or []:
        turns += [("user", user), ("assistant", assistant)]
    turns += [("user", _user_text(version)), ("assistant", version["output"])]
    extras = style.get("turn_extras") or []
    messages = []
    for i, (kind, text) in enumerate(turns):
        message = {role_key: roles[kind], content_key: text}
        if len(extras) == len(turns):
            message.update(extras[i])
        messages.append(message)
    record: dict = {}
    record[key] = messages
    if version.get("system") and not system_in_turns:
        record["system"] = version["system"]
    record.update(_extras(meta))
    return record
