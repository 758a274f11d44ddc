"""What the README's command-line session runs into: no database left behind by a command that
wrote nothing, exports that follow the umask, an empty export that says why, a suggest that
names the scores it lacks, and a progress rate that reads right when replies are slow."""

from __future__ import annotations

import json
import os
import stat

import pytest
from click.testing import CliRunner

from reflection import Candidate, Sample, Score, Store
from reflection.cli import main
from reflection.cli.oracle import rate_text


def invoke(*args, cwd=None):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.mark.parametrize(
    "args",
    [
        ("import", "nope.json"),
        ("reflect", "--mode", "response"),
        ("stats",),
        ("suggest",),
        ("export", "--out", "x.json"),
    ],
)
def test_a_command_that_writes_nothing_leaves_no_database(tmp_path, monkeypatch, args):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("REFLECTION_DB", raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    invoke(*args)
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_database_that_was_there_stays(tmp_path):
    db = tmp_path / "kept.db"
    Store(db).close()
    assert invoke("stats", "--db", db).exit_code == 0
    assert db.exists()


def test_a_command_that_writes_keeps_its_new_database(tmp_path):
    data = tmp_path / "d.jsonl"
    data.write_text('{"instruction": "a", "output": "b"}\n')
    assert invoke("import", data, "--db", tmp_path / "new.db").exit_code == 0
    assert (tmp_path / "new.db").exists()


@pytest.fixture
def small_db(tmp_path):
    db = tmp_path / "s.db"
    with Store(db) as store:
        ds = store.ensure_dataset("d")
        store.add_samples(ds.id, [Sample(f"Name a colour, number {i}.", output="Blue.") for i in range(3)])  # fmt: skip
    return db


def test_export_of_nothing_decided_says_why_and_writes_nothing(tmp_path, small_db):
    out = tmp_path / "x.jsonl"
    result = invoke("export", "--db", small_db, "--out", out)
    assert result.exit_code == 1
    assert result.output == (
        f"Error: nothing to write to {out}: 3 of 'd''s samples are undecided and --undecided"
        " skip leaves them out; --undecided original keeps their originals, --undecided"
        " suggested follows `reflection suggest`\n"
    )
    assert not out.exists()
    assert (
        invoke("export", "--db", small_db, "--out", out, "--undecided", "original").exit_code == 0
    )
    assert len(out.read_text().splitlines()) == 3


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_exported_files_follow_the_umask(tmp_path, small_db, umask, mode):
    out = tmp_path / "x.json"
    old = os.umask(umask)
    try:
        result = invoke("export", "--db", small_db, "--out", out, "--undecided", "original")
    finally:
        os.umask(old)
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(out.stat().st_mode) == mode
    assert len(json.loads(out.read_text())) == 3


def test_a_replaced_export_keeps_its_mode(tmp_path, small_db):
    out = tmp_path / "x.json"
    out.write_text("[]")
    out.chmod(0o640)
    assert (
        invoke("export", "--db", small_db, "--out", out, "--undecided", "original").exit_code == 0
    )
    assert stat.S_IMODE(out.stat().st_mode) == 0o640


def test_suggest_without_rifd_names_it_and_the_command(tmp_path, small_db):
    with Store(small_db) as store:
        (sid, *_) = store.sample_ids(store.dataset("d").id)
        cid = store.add_candidate(
            Candidate(sid, "response", instruction="x", output="Blue, or red.")
        )
        store.put_scores([Score(sid, "ifd_ppl", 0.5, "s@alpaca"), Score(sid, "ifd_ppl", 0.4, "s@alpaca", cid)])  # fmt: skip
    result = invoke("suggest", "--db", small_db)
    assert result.exit_code == 1
    assert result.output == (
        "Error: the selective rule needs r-IFD (rifd_ppl) and dataset 'd' has none: run"
        " `reflection score --metric rifd` first (only missing scores are computed)\n"
    )
    with Store(small_db) as store:
        assert store.suggestions(store.dataset("d").id) == {}


@pytest.mark.parametrize(
    ("rate", "text"),
    [(0.0, "first reply pending"), (1 / 24, "24 s each"), (0.5, "2 s each"), (3.21, "3.2/s")],
)
def test_rate_text(rate, text):
    assert rate_text(rate) == text
