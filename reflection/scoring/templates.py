"""Prompt templates the student model sees when it scores a pair.

The strings are the seed's, character for character (Cherry LLM, Superfiltering and
Reflection-Tuning `data_analysis.py`), so IFD values are comparable with their released files.
`chat` uses the student tokenizer's own chat template instead.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ConfigError


@dataclass(frozen=True)
class Template:
    """A prompt with and without an input field; `{instruction}` and `{input}` are filled in."""

    name: str
    no_input: str
    with_input: str


TEMPLATES: dict[str, Template] = {
    "alpaca": Template(
        "alpaca",
        "Below is an instruction that describes a task. "
        "Write a response that appropriately completes the request.\n\n"
        "### Instruction:\n{instruction}\n\n### Response:",
        "Below is an instruction that describes a task, paired with an input that provides "
        "further context. Write a response that appropriately completes the request.\n\n"
        "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:",
    ),
    "vicuna": Template(
        "vicuna",
        "A chat between a curious user and an artificial intelligence assistant. The assistant "
        "gives helpful, detailed, and polite answers to the user's questions. "
        "USER: {instruction} ASSISTANT:",
        "A chat between a curious user and an artificial intelligence assistant. The assistant "
        "gives helpful, detailed, and polite answers to the user's questions. "
        "USER: {instruction}\nInput:\n{input} ASSISTANT:",
    ),
    "wizardlm": Template(
        "wizardlm",
        "{instruction}\n\n### Response:",
        "{instruction}\n{input}\n\n### Response:",
    ),
    # Superfiltering's "none": the bare instruction and a newline.
    "none": Template("none", "{instruction}\n", "{instruction}\n{input}\n"),
}
# The model's own chat template (tokenizer.apply_chat_template); needs the tokenizer to fill.
CHAT = "chat"
TEMPLATE_NAMES = (*TEMPLATES, CHAT)
_ALIASES = {"wiz": "wizardlm", "superfiltering": "none", "raw": "none"}

# Reflection-Tuning's reverse prompt R(y): the response becomes the query, the instruction the
# target, filled into the template's no-input form.
REVERSE_PREFIX = (
    "Below is the response to an instruction, please guess the corresponding instruction "
    "for the given response.\n"
)
REVERSE_SUFFIX = "\nGenerate the instruction for the above response."


def template_name(name: str) -> str:
    """The canonical template name for a name or alias; ConfigError for an unknown one."""
    canonical = _ALIASES.get(name.lower(), name.lower())
    if canonical not in TEMPLATE_NAMES:
        raise ConfigError(f"unknown template {name!r}: choose one of {', '.join(TEMPLATE_NAMES)}")
    return canonical


def render_prompt(template: str, instruction: str, input: str = "", tokenizer=None) -> str:
    """P(x): the prompt for a pair, without the response."""
    name = template_name(template)
    if name == CHAT:
        if tokenizer is None or not getattr(tokenizer, "chat_template", None):
            raise ConfigError("template 'chat' needs a student tokenizer with a chat template")
        content = f"{instruction}\n{input}" if input else instruction
        return tokenizer.apply_chat_template(
            [{"role": "user", "content": content}], add_generation_prompt=True, tokenize=False
        )
    chosen = TEMPLATES[name]
    if input:
        return chosen.with_input.format_map({"instruction": instruction, "input": input})
    return chosen.no_input.format_map({"instruction": instruction})


def render_reverse_prompt(template: str, output: str, tokenizer=None) -> str:
    """R(y): the no-input prompt asking to guess the instruction behind `output`."""
    return render_prompt(template, REVERSE_PREFIX + output + REVERSE_SUFFIX, "", tokenizer)
