"""Read reviews made elsewhere into one shape: plain JSONL, Argilla and Label Studio exports.

Plain JSONL (or a JSON list), one review a record:

    {"sample_id": 12,                       # the sample: exactly one of sample_id, position,
     "position": 3,                         #   content_hash, or match: {"field": NAME,
     "content_hash": "9f2c...",             #   "value": TEXT} (instruction/input/output
     "match": {"field": "output", "value": "..."},  # compared after whitespace normalisation,
                                            #   or an extra field the samples carry)
     "decision": "accept",                  # accept, edit, reject or skip
     "version": "original",                 # accept: "original" or a candidate id
     "edited": {"instruction": "...", "output": "..."},  # edit: the final text (fields left
     "edited_from": "original",             #   out are those of edited_from, the version
                                            #   the reviewer started from)
     "reviewer": "ana", "time": "2026-01-05T10:00:00Z", "note": ""}

Argilla (`dataset.records.to_json`, records with `fields` and `responses`): the sample is named
by metadata `sample_id`, `position` or `content_hash`, else by the record's instruction, input
and output fields; a label question `decision` (accept, reject, skip) gives the decision and
text questions `instruction`, `input`, `output` an edit. One review per responding user.
Argilla 1.x records (`responses` a list of {user_id, values, status}) are read too.

Label Studio (JSON export, tasks with `data` and `annotations`): the sample is named by `data`
as above; a choices control named `decision` and textarea controls named `instruction`,
`input`, `output` do the same. One review per annotation; a cancelled one is a skip.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InputError, Where
from ..formats.records import type_name

REVIEW_FORMATS = ("plain", "argilla", "labelstudio")
TEXT_FIELDS = ("instruction", "input", "output")
KEY_KINDS = ("sample_id", "position", "content_hash", "match")


@dataclass
class Incoming:
    """One review as read, before it is matched to a sample."""

    where: Where
    key: tuple[str, Any]  # (kind, value); kind in KEY_KINDS or "content"
    decision: str
    reviewer: str
    time: str = ""
    version: int | None = None  # accept: the candidate chosen (None: the original)
    edited: dict[str, str] = field(default_factory=dict)
    edited_from: int | None = None
    note: str = ""
    origin: dict[str, Any] = field(default_factory=dict)


def detect(path: Path, first: Any, where: Where) -> str:
    if not isinstance(first, dict):
        raise InputError(path, f"expected an object, got {type_name(first)}", **where)
    if "annotations" in first and "data" in first:
        return "labelstudio"
    if "responses" in first and "fields" in first:
        return "argilla"
    if "decision" in first:
        return "plain"
    raise InputError(
        path, "not a review record: expected `decision` (plain JSONL), `fields` and `responses`"
        " (Argilla) or `data` and `annotations` (Label Studio)", **where,
    )  # fmt: skip


def _version(path: Path, where: Where, value: Any, name: str) -> int | None:
    if value in (None, "original"):
        return None
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    raise InputError(path, f'{name} must be "original" or a candidate id, not {value!r}', **where)


def _text(path: Path, where: Where, value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise InputError(path, f"{name} must be text, not {type_name(value)}", **where)
    return value


def plain(path: Path, where: Where, record: Any, reviewer: str) -> list[Incoming]:
    if not isinstance(record, dict):
        raise InputError(path, f"expected an object, got {type_name(record)}", **where)
    keys = [k for k in KEY_KINDS if k in record]
    if len(keys) != 1:
        found = f"found {', '.join(keys)}" if keys else "found none"
        raise InputError(
            path, f"name the sample with exactly one of {', '.join(KEY_KINDS)} ({found})", **where
        )
    kind, value = keys[0], record[keys[0]]
    if kind == "match":
        if not isinstance(value, dict) or not isinstance(value.get("field"), str):
            raise InputError(path, 'match must be {"field": NAME, "value": ...}', **where)
        value = (value["field"], value.get("value"))
    edited = record.get("edited") or {}
    if not isinstance(edited, dict):
        raise InputError(path, f"edited must be an object, not {type_name(edited)}", **where)
    return [
        Incoming(
            where=where,
            key=(kind, value),
            decision=_text(path, where, record["decision"], "decision"),
            reviewer=_text(path, where, record.get("reviewer") or reviewer, "reviewer"),
            time=_text(path, where, record.get("time") or "", "time"),
            version=_version(path, where, record.get("version"), "version"),
            edited={k: _text(path, where, v, f"edited.{k}") for k, v in edited.items()},
            edited_from=_version(path, where, record.get("edited_from"), "edited_from"),
            note=_text(path, where, record.get("note") or "", "note"),
            origin={"format": "plain", **({"id": record["id"]} if "id" in record else {})},
        )
    ]


def _key_of(path: Path, where: Where, meta: dict, texts: dict) -> tuple[str, Any]:
    for kind in ("sample_id", "position", "content_hash"):
        if meta.get(kind) is not None:
            return (kind, meta[kind])
    if not isinstance(texts.get("instruction"), str):
        raise InputError(
            path, "the record names no sample: give metadata sample_id, position or"
            " content_hash, or an instruction field", **where,
        )  # fmt: skip
    return ("content", {k: str(texts.get(k) or "") for k in TEXT_FIELDS})


def _from_answers(
    path: Path, where: Where, answers: dict[str, Any], key, reviewer: str, time: str, origin: dict
) -> Incoming:
    """One reviewer's answers ({question: value}) as a review."""
    decision = answers.get("decision")
    if isinstance(decision, list):  # a multi-label question: one label expected
        decision = decision[0] if len(decision) == 1 else decision
    edited = {k: answers[k] for k in TEXT_FIELDS if isinstance(answers.get(k), str)}
    if decision is None and edited:
        decision = "edit"
    if not isinstance(decision, str):
        raise InputError(
            path, f"reviewer {reviewer!r} gave no single `decision` answer ({decision!r})", **where
        )
    if edited and decision == "accept":
        decision = "edit"  # accepting with changed text is an edit (the text decides below)
    return Incoming(where, key, decision, reviewer, time, edited=edited, origin=origin)


def argilla(path: Path, where: Where, record: Any, reviewer: str) -> list[Incoming]:
    if not isinstance(record, dict) or not isinstance(record.get("fields"), dict):
        raise InputError(path, "an Argilla record needs a `fields` object", **where)
    key = _key_of(path, where, record.get("metadata") or {}, record["fields"])
    origin = {"format": "argilla", "id": record.get("id"), "server_id": record.get("_server_id")}
    by_user: dict[str, dict[str, Any]] = {}
    status: dict[str, str] = {}
    responses = record.get("responses") or {}
    if isinstance(responses, dict):  # Argilla 2.x: {question: [{value, user_id}]}
        for question, answers in responses.items():
            for answer in answers or []:
                by_user.setdefault(str(answer.get("user_id")), {})[question] = answer.get("value")
    elif isinstance(responses, list):  # Argilla 1.x: [{user_id, values: {q: {value}}, status}]
        for response in responses:
            user = str(response.get("user_id"))
            status[user] = response.get("status", "submitted")
            values = response.get("values") or {}
            by_user[user] = {q: (v or {}).get("value") for q, v in values.items()}
    else:
        raise InputError(path, f"responses must be an object or a list, not {type_name(responses)}", **where)  # fmt: skip
    found = []
    for user, answers in sorted(by_user.items()):
        if status.get(user) == "draft":
            continue
        if status.get(user) == "discarded":
            answers = {"decision": "skip"}
        found.append(
            _from_answers(
                path, where, answers, key, f"argilla:{user}", "", {**origin, "user_id": user}
            )
        )
    return found


def labelstudio(path: Path, where: Where, record: Any, reviewer: str) -> list[Incoming]:
    if not isinstance(record, dict) or not isinstance(record.get("data"), dict):
        raise InputError(path, "a Label Studio task needs a `data` object", **where)
    key = _key_of(path, where, record["data"], record["data"])
    found = []
    for annotation in record.get("annotations") or []:
        user = annotation.get("completed_by")
        if isinstance(user, dict):
            user = user.get("email") or user.get("id")
        name = f"labelstudio:{user}" if user is not None else reviewer
        time = str(annotation.get("updated_at") or annotation.get("created_at") or "")
        origin = {
            "format": "labelstudio",
            "task": record.get("id"),
            "annotation": annotation.get("id"),
        }
        if annotation.get("was_cancelled"):
            found.append(Incoming(where, key, "skip", name, time, origin=origin))
            continue
        answers: dict[str, Any] = {}
        for result in annotation.get("result") or []:
            value = result.get("value") or {}
            if "choices" in value:
                answers[result.get("from_name")] = value["choices"]
            elif "text" in value:
                text = value["text"]
                answers[result.get("from_name")] = (
                    "\n".join(text) if isinstance(text, list) else text
                )
        found.append(_from_answers(path, where, answers, key, name, time, origin))
    return found


READERS = {"plain": plain, "argilla": argilla, "labelstudio": labelstudio}
