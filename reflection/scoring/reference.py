"""The seed's way of computing IFD and r-IFD: four forward passes with labels, batch size 1.

Slow, and the yardstick: the fast path in ifd.py must give the same losses (tests hold it to
1e-3 relative; they agree to about 1e-6).
"""

from __future__ import annotations

from .forward import Student
from .pairs import DEFAULT_MAX_LENGTH, PARTS, IfdResult, Pair
from .templates import render_prompt, render_reverse_prompt


def _whole_text_loss(student: Student, text: str, max_length: int) -> float | None:
    import torch

    ids = student.tokenizer.encode(
        text, return_tensors="pt", truncation=True, max_length=max_length
    )
    with torch.inference_mode():
        loss = student.model(ids.to(student.device), labels=ids.to(student.device)).loss
    return None if torch.isnan(loss) else loss.item()


def _part_text_loss(student: Student, text: str, target: str, max_length: int) -> float | None:
    import torch

    tok = student.tokenizer
    ids = tok.encode(text, return_tensors="pt", truncation=True, max_length=max_length)
    start = len(tok.encode(text[: text.rfind(target)]))
    labels = ids.clone()
    labels[0, :start] = -100
    with torch.inference_mode():
        loss = student.model(ids.to(student.device), labels=labels.to(student.device)).loss
    return None if torch.isnan(loss) else loss.item()


def reference_ifd(
    student: Student, pair: Pair, template: str = "alpaca", max_length: int = DEFAULT_MAX_LENGTH
) -> IfdResult:
    """The seed's computation: four forward passes with labels, batch size 1."""
    result = IfdResult(losses=dict.fromkeys(PARTS))
    if not pair.output:
        result.note = "empty output"
        return result
    tok = student.tokenizer
    prompt = render_prompt(template, pair.instruction, pair.input, tok)
    reverse = render_reverse_prompt(template, pair.output, tok)
    prompt_len = len(tok.encode(prompt, truncation=True, max_length=max_length))
    reverse_len = len(tok.encode(reverse, truncation=True, max_length=max_length))
    question = pair.instruction + pair.input
    result.losses = {
        "A_direct": _whole_text_loss(student, pair.output, max_length - prompt_len + 1),
        "A_condition": _part_text_loss(student, prompt + pair.output, pair.output, max_length),
        "Q_direct": _whole_text_loss(student, question, max_length - reverse_len + 1),
        "Q_condition": _part_text_loss(student, reverse + question, pair.instruction, max_length),
    }
    return result
