"""Reflection prompts: what we ask the oracle, as data, versioned by a hash.

Three templates, one per kind of request:
- ``instruction``: critique the instruction and the answer, then write a new, more demanding
  instruction (with its own input if it needs one) and a detailed answer to it;
- ``response``: critique the answer, then write a better one (also used for ``both``, where it
  is applied to the instruction-reflected pair);
- ``compress``: fold an instruction and its input into one self-contained instruction.

Each template has a system and a user message with ``{placeholder}`` fields, and the reply
format (tagged sections or JSON) is appended from ``{format}``. The prompt hash stored on every
candidate covers all three texts, so a changed template never reuses an old result.

A user may replace any template with a TOML file::

    [instruction]
    system = "..."
    user = "... {instruction} ... {input_section} ... {output} ... {format}"
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError

KINDS = ("instruction", "response", "compress")

# The sections of each kind of reply, in order: (tag, field, required).
SECTIONS = {
    "instruction": (
        ("Critique", "critique", True),
        ("New Instruction", "instruction", True),
        ("New Input", "input", False),
        ("New Answer", "output", True),
    ),
    "response": (("Critique", "critique", True), ("Better Answer", "output", True)),
    "compress": (("New Instruction", "instruction", True),),
}

# What the format block asks for in each section; a model that copies these back has said
# nothing, and the parser treats them as empty.
SECTION_HINTS = {
    "critique": "(your critique)",
    "instruction": "(the new instruction)",
    "input": "(the new input; leave this section out if the instruction needs none)",
    "output": "(the answer)",
}

PLACEHOLDERS = ("instruction", "input", "input_section", "output", "format")
_REQUIRED = {
    "instruction": ("instruction", "output"),
    "response": ("instruction", "output"),
    "compress": ("instruction",),
}
_FIELD = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")

_SYSTEM = (
    "You review and improve training data for instruction-following assistants. You are"
    " exacting, factual and concise in critique, and thorough in what you write. You always"
    " answer in exactly the format you are asked for, with no text outside it."
)

_INSTRUCTION_USER = """\
Here is an instruction, {input_note}and the answer an assistant gave.

[Instruction]
{instruction}
[End]
{input_section}[Answer]
{output}
[End]

Step 1. Critique the instruction on:
- complexity of the topic: is it worth asking, or trivial?
- level of detail required: does it say how much depth, what form, what length?
- knowledge required: what must one know to answer it well?
- ambiguity: can it be read in more than one way?
- logical reasoning or problem solving: does it make the reader think?
Then critique the answer on helpfulness, relevance, accuracy and level of detail, and explain \
how the weaknesses of the instruction led to the weaknesses of the answer.

Step 2. Write a new instruction on the same subject: self-contained, specific and more \
demanding than the original. If it needs material to work on (a text, data, code), put that \
material in a New Input section; otherwise leave that section out.

Step 3. Write a detailed, accurate and well-organised answer to the new instruction.

{format}"""

_RESPONSE_USER = """\
Here is an instruction, {input_note}and the answer an assistant gave.

[Instruction]
{instruction}
[End]
{input_section}[Answer]
{output}
[End]

Step 1. Critique the answer on helpfulness, relevance, accuracy and level of detail. Say \
precisely what is missing, wrong or padded.

Step 2. Write a better answer to the same instruction: complete, correct and detailed, \
fixing everything the critique found. Keep what was good in the original.

{format}"""

_COMPRESS_USER = """\
Here is an instruction together with the input it works on.

[Instruction]
{instruction}
[End]
{input_section}
Rewrite them as one self-contained instruction that includes everything the input provides, \
so that nothing else is needed to answer it. Do not answer it.

{format}"""


@dataclass(frozen=True)
class Template:
    """The system and user messages of one kind of request."""

    kind: str
    system: str
    user: str
    source: str = "built-in"


@dataclass(frozen=True)
class PromptSet:
    """One template per kind: the built-ins, or those of a user's file."""

    instruction: Template
    response: Template
    compress: Template

    def template(self, kind: str) -> Template:
        return getattr(self, "response" if kind == "both" else kind)


DEFAULT_PROMPTS = PromptSet(
    instruction=Template("instruction", _SYSTEM, _INSTRUCTION_USER),
    response=Template("response", _SYSTEM, _RESPONSE_USER),
    compress=Template("compress", _SYSTEM, _COMPRESS_USER),
)


def format_block(kind: str, *, json_mode: bool = False) -> str:
    """How the reply must be laid out: tagged sections, or one JSON object."""
    base = "response" if kind == "both" else kind
    if json_mode:
        fields = ", ".join(f'"{field}"' for _, field, _ in SECTIONS[base])
        return (
            f"Reply with one JSON object and nothing else. Its keys are {fields}; every value"
            " is a string (use an empty string for an input the instruction does not need)."
        )
    lines = ["Reply in exactly this format, closing every section with [End]:"]
    for tag, field, _ in SECTIONS[base]:
        lines += [f"[{tag}]", SECTION_HINTS[field], "[End]"]
    return "\n".join(lines)


def _input_parts(input_text: str) -> dict[str, str]:
    if input_text.strip():
        return {"input_section": f"[Input]\n{input_text}\n[End]\n", "input_note": "its input, "}
    return {"input_section": "", "input_note": ""}


def _fill(text: str, values: dict[str, str]) -> str:
    # Only known names are replaced, in one pass: braces in dataset text or in a user's
    # template (JSON examples, code) are left alone and never re-expanded.
    return _FIELD.sub(lambda m: values.get(m.group(1), m.group(0)), text)


def build_messages(
    kind: str,
    instruction: str,
    input: str,
    output: str,
    *,
    prompts: PromptSet = DEFAULT_PROMPTS,
    json_mode: bool = False,
) -> list[dict[str, str]]:
    """The chat messages asking for one reflection of one pair."""
    template = prompts.template(kind)
    values = {
        "instruction": instruction,
        "input": input,
        "output": output,
        "format": format_block(kind, json_mode=json_mode),
        **_input_parts(input),
    }
    user = _fill(template.user, values)
    if "{format}" not in template.user:
        user = user.rstrip() + "\n\n" + values["format"]
    messages = [{"role": "user", "content": user}]
    if template.system.strip():
        messages.insert(0, {"role": "system", "content": template.system})
    return messages


def prompt_hash(kind: str, *, prompts: PromptSet = DEFAULT_PROMPTS, json_mode: bool = False) -> str:
    """A short hash of everything that shapes the request but the data: stored on candidates."""
    template = prompts.template(kind)
    text = "\x1f".join([template.system, template.user, format_block(kind, json_mode=json_mode)])
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def json_schema(kind: str) -> dict:
    """The `response_format` that asks an endpoint for the JSON reply of this kind."""
    base = "response" if kind == "both" else kind
    fields = [field for _, field, _ in SECTIONS[base]]
    return {
        "type": "json_schema",
        "json_schema": {
            "name": f"{base}_reflection",
            "strict": True,
            "schema": {
                "type": "object",
                "properties": {field: {"type": "string"} for field in fields},
                "required": fields,
                "additionalProperties": False,
            },
        },
    }


def grammar(kind: str) -> str:
    """A GBNF grammar (llama.cpp) that forces the tagged reply of this kind."""
    base = "response" if kind == "both" else kind
    parts = []
    for tag, field, required in SECTIONS[base]:
        section = f'"[{tag}]\\n" text "\\n[End]\\n"'
        parts.append(section if required and field != "input" else f"({section})?")
    # Lines may not start with "[" (a stray tag) or "(" (the format's hints copied back).
    # No bounded repetitions: llama.cpp expands {m,n} into states and samples far slower.
    return (
        "root ::= " + " ".join(parts) + "\n"
        'text ::= line ("\\n" line)*\n'
        "line ::= [^\\n\\[(] [^\\n]*\n"
    )


def load_prompts(path: str | Path) -> PromptSet:
    """Templates from a TOML file; kinds it leaves out keep the built-in ones."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(path, "template file not found") from None
    except UnicodeDecodeError as exc:
        raise InputError(path, f"not a valid TOML template file ({exc})") from None
    return prompts_from_toml(text, path)


def prompts_from_toml(text: str, path: str | Path) -> PromptSet:
    """Templates from the text of a TOML file (`path` names it in errors and as the source)."""
    path = Path(path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(path, f"not a valid TOML template file ({exc})") from None
    unknown = sorted(set(data) - set(KINDS))
    if unknown:
        raise InputError(path, f"unknown section [{unknown[0]}]; use {', '.join(KINDS)}")
    templates = {}
    for kind in KINDS:
        section = data.get(kind)
        if section is None:
            templates[kind] = DEFAULT_PROMPTS.template(kind)
            continue
        if not isinstance(section, dict) or not isinstance(section.get("user"), str):
            raise InputError(path, f"[{kind}] needs a `user` message (a string)")
        system = section.get("system", _SYSTEM)
        if not isinstance(system, str):
            raise InputError(path, f"[{kind}] `system` must be a string")
        _check_placeholders(path, kind, system, section["user"])
        templates[kind] = Template(kind, system, section["user"], source=str(path))
    return PromptSet(**templates)


def _check_placeholders(path: Path, kind: str, system: str, user: str) -> None:
    used = set(_FIELD.findall(user)) | set(_FIELD.findall(system))
    allowed = set(PLACEHOLDERS) | {"input_note"}
    strange = sorted(used - allowed)
    if strange:
        raise InputError(
            path,
            f"[{kind}] uses unknown placeholder {{{strange[0]}}};"
            f" known: {', '.join('{' + p + '}' for p in PLACEHOLDERS)}",
        )
    missing = [name for name in _REQUIRED[kind] if f"{{{name}}}" not in user]
    if not ({"input", "input_section"} & used):
        missing.append("input_section")
    if missing:
        raise InputError(
            path,
            f"[{kind}] user message lacks "
            + ", ".join("{" + name + "}" for name in missing)
            + " (the oracle would never see that part of the sample)",
        )
