"""The dequantized-student cache (scoring/student.py): the second load of a GGUF reads fp32
safetensors instead of dequantizing again, and gives the same model bit for bit."""

from __future__ import annotations

import logging
import os

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("gguf")

from reflection import ConfigError  # noqa: E402
from reflection.scoring import student as student_module  # noqa: E402
from reflection.scoring.ifd import compute_ifd  # noqa: E402
from reflection.scoring.pairs import Pair  # noqa: E402

pytestmark = [pytest.mark.student, pytest.mark.slow]

TEXT = "Below is an instruction.\n\n### Response:\n  Ünïcode 你好, tabs\tand 1,234.5 numbers"


@pytest.fixture
def gguf():
    try:
        return student_module.smollm2_path()
    except ConfigError as exc:
        pytest.skip(str(exc))


def _load(path):
    # Past the per-process lru_cache: each call really loads.
    return student_module._load_student.__wrapped__(str(path), "cpu", "float32")


def test_second_load_reads_the_cache_and_is_identical(gguf, tmp_path, monkeypatch, alpaca_records):
    monkeypatch.setenv("REFLECTION_CACHE", str(tmp_path / "cache"))
    target = student_module._cached_folder(gguf, "float32")
    assert target.parent == tmp_path / "cache" / "students"
    first = _load(gguf)  # from the GGUF, and writes the cache
    assert (target / "reflection-complete").exists()
    assert (target / "model.safetensors").stat().st_size > 100_000_000
    assert getattr(first.model, "hf_quantizer", None) is not None  # it did dequantize

    second = _load(gguf)
    assert getattr(second.model, "hf_quantizer", None) is None  # plain safetensors this time
    assert second.name == first.name  # scores keep their scorer id
    a, b = first.model.state_dict(), second.model.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    tok_a, tok_b = first.tokenizer, second.tokenizer
    assert tok_a(TEXT)["input_ids"] == tok_b(TEXT)["input_ids"]
    assert (tok_a.bos_token_id, tok_a.eos_token_id, tok_a.pad_token_id) == (
        tok_b.bos_token_id, tok_b.eos_token_id, tok_b.pad_token_id,
    )  # fmt: skip
    assert tok_a.chat_template == tok_b.chat_template
    r = alpaca_records[1]
    pair = Pair(r["instruction"], r["input"], r["output"])
    assert compute_ifd(first, [pair])[0].losses == compute_ifd(second, [pair])[0].losses


def test_a_changed_gguf_gets_a_new_entry(gguf, tmp_path, monkeypatch):
    monkeypatch.setenv("REFLECTION_CACHE", str(tmp_path / "cache"))
    copy = tmp_path / gguf.name
    copy.write_bytes(gguf.read_bytes())
    before = student_module._cached_folder(copy, "float32")
    stat = copy.stat()
    os.utime(copy, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # maybe new weights
    assert student_module._cached_folder(copy, "float32") != before
    assert student_module._cached_folder(copy, "bfloat16") != student_module._cached_folder(
        copy, "float32"
    )
    assert student_module._cached_folder(gguf, "float32") != student_module._cached_folder(
        copy, "float32"
    )  # another path


def test_cache_off_and_unwritable(gguf, student, tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("REFLECTION_CACHE", "off")
    assert student_module._cached_folder(gguf, "float32") is None  # the load writes nothing

    # A cache folder that cannot be made: the write after a load warns and returns, so the
    # load goes on (the session's loaded student stands in for a fresh load's model).
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the cache folder would go")
    monkeypatch.setenv("REFLECTION_CACHE", str(blocked))
    target = student_module._cached_folder(gguf, "float32")
    assert target.is_relative_to(blocked)
    with caplog.at_level(logging.WARNING, logger=student_module.__name__):
        student_module._write_cache(student.model, student.tokenizer, target)
    assert "could not cache the dequantized student" in caplog.text
    assert blocked.read_text().startswith("a file")
    assert not target.exists()
