"""Oracle reply text → critique, new instruction, input and answer. Pure functions.

Oracles break formats in a handful of ways, all handled here: tag variants (``[New Answer]``,
``New Answer:``, ``**New Answer**``, ``## New Answer``), a missing ``[End]``, chatter before,
between and after sections, the format's own hints copied back, a section given twice (the
first real one wins), JSON wrapped in a code fence. The result always says how well it went:
``ok`` (everything the kind needs), ``partial`` (something usable is missing) or ``failed``
(nothing usable), with the reason in words.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from .prompts import SECTION_HINTS, SECTIONS

# Section names an oracle may use, by the field they fill.
_ALIASES = {
    "critique": (
        "critique", "critiques", "feedback", "analysis", "evaluation", "assessment", "review",
        "critique of the instruction", "critique of the answer", "instruction critique",
        "answer critique", "response critique",
    ),
    "instruction": (
        "new instruction", "improved instruction", "better instruction", "revised instruction",
        "rewritten instruction", "new question", "improved question", "new prompt",
        "compressed instruction", "combined instruction",
    ),
    "input": ("new input", "improved input", "revised input", "new context"),
    "output": (
        "new answer", "new response", "new output", "better answer", "better response",
        "better output", "improved answer", "improved response", "revised answer",
        "revised response", "final answer", "answer to the new instruction",
    ),
}  # fmt: skip
_FIELD_OF = {alias: field for field, aliases in _ALIASES.items() for alias in aliases}
_NAMES = "|".join(sorted((re.escape(a).replace(r"\ ", r"\s+") for a in _FIELD_OF), key=len)[::-1])
_HEADER = re.compile(
    r"^[ \t]*(?P<hash>\#{1,6})?[ \t]*(?P<bold>\*\*|__)?[ \t]*(?P<open>[\[<])?[ \t]*"
    rf"(?P<name>{_NAMES})[ \t]*(?P<close>[\]>])?[ \t]*(?:\*\*|__)?[ \t]*(?P<colon>:)?"
    r"[ \t]*(?:\*\*|__)?[ \t]*(?P<rest>.*)$",
    re.IGNORECASE | re.MULTILINE,
)
# An end marker: [End], [End of answer], [/New Answer], or a closing tag that names a section
# (</answer>). Any other closing tag is content: answers about HTML contain </script>, </p>.
_END = re.compile(
    rf"\[\s*(?:end\b[^\]\n]*|/[^\]\n]*)\]|</\s*(?:end|{_NAMES}|answer|response|output)\s*>",
    re.IGNORECASE,
)
# Text that ends a complete answer; a reply that stops elsewhere, without the [End] the rest
# of it uses, was most likely cut off.
_FINISHED = re.compile(r"""[.!?:;)\]}"'`*_>|…]\s*$|^\s*$""")
_HINT = re.compile(
    r"^[(<{\[]\s*(?:your|the|a|an|insert|write|put|new|optional|improved|better)\b[^)>}\]]*[)>}\]]$"
    r"|^(?:\.\.\.|…|<[^>]*>|\{[a-z_ ]+\})$",
    re.IGNORECASE,
)
_NO_INPUT = re.compile(r"^(?:none|n/?a|no input|\(none\)|\(no input\)|-|empty|null)\.?$", re.I)
_FENCE = re.compile(r"^```[a-zA-Z]*\s*\n?|\n?```\s*$")
_JSON_ALIASES = {
    "critique": ("critique", "feedback", "analysis"),
    "instruction": ("instruction", "new_instruction", "question"),
    "input": ("input", "new_input"),
    "output": ("output", "answer", "new_answer", "better_answer", "response", "better_response"),
}
_HINT_TEXTS = {text.lower() for text in SECTION_HINTS.values()}


@dataclass
class Parsed:
    """What could be read from one reply, and how well that went."""

    status: str  # ok, partial, failed
    reason: str = ""
    critique: str = ""
    instruction: str = ""
    input: str = ""
    output: str = ""


def _base(kind: str) -> str:
    return "response" if kind in ("response", "both") else kind


def _is_header(match: re.Match[str]) -> bool:
    """A name on its own line, or marked as a heading: not a sentence that starts with it."""
    marked = match["hash"] or match["bold"] or match["colon"]
    bracketed = match["open"] and match["close"]
    return bool(marked or bracketed or not match["rest"].strip())


def _is_hint(text: str) -> bool:
    return text.lower() in _HINT_TEXTS or bool(_HINT.match(text))


def _clean(text: str) -> str:
    end = _END.search(text)
    if end:
        text = text[: end.start()]
    lines = _trim_stray_bold(text.strip()).splitlines()
    while lines and (not lines[0].strip() or _is_hint(lines[0].strip())):
        lines.pop(0)  # the format's hint copied back above the real text
    return "\n".join(lines).strip()


def _trim_stray_bold(text: str) -> str:
    """Drop a `**` left over from a bold header (`**New Answer:** text`), never real emphasis:
    only an unpaired marker at the very start or end goes."""
    for marker in ("**", "__"):
        first, newline, rest = text.partition("\n")
        if first.startswith(marker) and first.count(marker) % 2:
            text = (first[len(marker) :] + newline + rest).lstrip()
        head, newline, last = text.rpartition("\n")
        if last.endswith(marker) and last.count(marker) % 2:
            text = (head + newline + last[: -len(marker)]).rstrip()
    return text


def _cut_off(text: str) -> bool:
    """The last section has no end marker although the reply uses them, and stops mid-sentence."""
    headers = [m for m in _HEADER.finditer(text) if _is_header(m)]
    if not headers or not _END.search(text[: headers[-1].start()]):
        return False
    last = text[headers[-1].start() :]
    return not _END.search(last) and not _FINISHED.search(last)


def sections(text: str) -> dict[str, str]:
    """The first non-empty text of each known section in a tagged reply.

    A section that only repeats the format's hint, e.g. "(your critique)", counts as absent;
    its field is then listed under the key "_echoed" (comma-separated).
    """
    found: dict[str, str] = {}
    echoed: list[str] = []
    headers = [m for m in _HEADER.finditer(text) if _is_header(m)]
    for index, match in enumerate(headers):
        field = _FIELD_OF[" ".join(match["name"].lower().split())]
        stop = headers[index + 1].start() if index + 1 < len(headers) else len(text)
        body = (match["rest"] + "\n" if match["rest"].strip() else "") + text[match.end() : stop]
        content = _clean(body)
        if content and field not in found:
            found[field] = content
        elif not content and _END.split(body)[0].strip():
            echoed.append(field)
    echoed = [field for field in echoed if field not in found]
    if echoed:
        found["_echoed"] = ",".join(dict.fromkeys(echoed))
    return found


def _judge(kind: str, fields: dict[str, str], how: str) -> Parsed:
    base = _base(kind)
    if "input" in fields and _NO_INPUT.match(fields["input"]):
        fields["input"] = ""
    parsed = Parsed(status="ok", **{k: v for k, v in fields.items() if k in _ALIASES})
    wanted = [(tag, field) for tag, field, required in SECTIONS[base] if required]
    missing = [(tag, field) for tag, field in wanted if not fields.get(field)]
    if not missing:
        return parsed
    content = [field for _, field in wanted if field != "critique"]
    missing_content = [field for _, field in missing if field in content]
    parsed.reason = "no " + ", ".join(how.format(tag=tag, field=field) for tag, field in missing)
    if fields.get("_echoed"):
        parsed.reason += " (the format's placeholder text was copied back instead)"
    parsed.status = "failed" if len(missing_content) == len(content) else "partial"
    return parsed


def parse_reply(text: str | None, kind: str) -> Parsed:
    """Read a tagged reply of this kind (instruction, response, both or compress)."""
    if not text or not text.strip():
        return Parsed(status="failed", reason="empty reply")
    parsed = _judge(kind, sections(text), "[{tag}] section")
    if parsed.status == "ok" and _cut_off(text):
        parsed.status = "partial"
        parsed.reason = "the reply stops mid-sentence without its [End]: probably cut off"
    return parsed


def parse_json_reply(text: str | None, kind: str) -> Parsed:
    """Read and validate a JSON-mode reply; falls back to tags if the model ignored JSON."""
    if not text or not text.strip():
        return Parsed(status="failed", reason="empty reply")
    body = _FENCE.sub("", text.strip())
    start, end = body.find("{"), body.rfind("}")
    if start < 0:
        tagged = parse_reply(text, kind)
        return tagged if tagged.status != "failed" else Parsed("failed", "no JSON object")
    try:
        data = json.loads(body[start : end + 1] if end > start else body[start:])
    except json.JSONDecodeError as exc:
        tagged = parse_reply(text, kind)
        if tagged.status != "failed":
            return tagged
        return _salvage(body[start:], kind, f"invalid JSON ({exc.msg} at char {exc.pos})")
    if not isinstance(data, dict):
        return Parsed(status="failed", reason="no JSON object")
    fields, problems = {}, []
    for field, names in _JSON_ALIASES.items():
        for name in names:
            value = data.get(name)
            if value is None:
                continue
            if not isinstance(value, str):
                problems.append(f"{name} is {type(value).__name__}, not a string")
                value = json.dumps(value, ensure_ascii=False)
            if _clean(value):
                fields[field] = _clean(value)
                break
    parsed = _judge(kind, fields, 'JSON "{field}"')
    if problems:
        parsed.reason = "; ".join(filter(None, [parsed.reason, *problems]))
    return parsed


_JSON_STRING = re.compile(r'"(\w+)"\s*:\s*"((?:[^"\\]|\\.)*)(?:"|$)', re.DOTALL)


def _salvage(body: str, kind: str, problem: str) -> Parsed:
    """Fields of a broken JSON object (often cut off at the token limit) that can still be read."""
    data = {}
    for name, value in _JSON_STRING.findall(body):
        try:
            data[name] = json.loads(f'"{value}"')
        except json.JSONDecodeError:
            data[name] = value
    fields = {}
    for field, names in _JSON_ALIASES.items():
        value = next((_clean(data[n]) for n in names if isinstance(data.get(n), str)), "")
        if value:
            fields[field] = value
    if not fields:
        return Parsed(status="failed", reason=problem)
    parsed = _judge(kind, fields, 'JSON "{field}"')
    parsed.status = "failed" if parsed.status == "failed" else "partial"
    parsed.reason = "; ".join(filter(None, [problem, "read the complete fields", parsed.reason]))
    return parsed


def parse(text: str | None, kind: str, *, json_mode: bool = False) -> Parsed:
    """Dispatch on the reply format the request asked for."""
    return parse_json_reply(text, kind) if json_mode else parse_reply(text, kind)
