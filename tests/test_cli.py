"""The `reflection` command through its real entry point (the installed console script)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from reflection.cli import main

REFLECTION = shutil.which("reflection")


def run(*args, cwd=None, env=None):
    command = [REFLECTION] if REFLECTION else [sys.executable, "-m", "reflection"]
    return subprocess.run(
        [*command, *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        timeout=300,
    )


def test_entry_point_is_installed():
    assert REFLECTION, "pip install -e . installs the `reflection` console script"


def test_import_then_export_gives_back_every_record(tmp_path, alpaca_records):
    from tests.conftest import ALPACA_PATH

    db = tmp_path / "r.db"
    first = run("import", ALPACA_PATH, "--db", db)
    assert first.returncode == 0, first.stderr
    assert "3111 added, 0 skipped" in first.stdout
    again = run("import", ALPACA_PATH, "--db", db)
    assert "0 added, 3111 skipped" in again.stdout
    out = tmp_path / "back.json"
    exported = run(
        "export", "--db", db, "--undecided", "original", "--format", "alpaca", "--out", out
    )
    assert exported.returncode == 0, exported.stderr
    assert "Wrote 3111 records" in exported.stdout
    back = json.loads(out.read_text())
    assert [(r["instruction"], r["input"], r["output"]) for r in back] == [
        (r["instruction"], r["input"], r["output"]) for r in alpaca_records
    ]


def test_db_defaults_to_the_environment_then_the_current_folder(tmp_path):
    data = tmp_path / "d.jsonl"
    data.write_text('{"instruction": "a", "output": "b"}\n')
    assert run("import", data, env={"REFLECTION_DB": str(tmp_path / "env.db")}).returncode == 0
    assert (tmp_path / "env.db").exists()
    env = {k: v for k, v in os.environ.items() if k != "REFLECTION_DB"}
    result = subprocess.run(
        [REFLECTION or "reflection", "import", str(data)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
    )
    assert result.returncode == 0 and (tmp_path / "reflection.db").exists()


def test_stats_json(tmp_path):
    data = tmp_path / "d.jsonl"
    data.write_text('{"instruction": "a", "output": "b"}\n{"instruction": "c", "output": ""}\n')
    run("import", data, "--db", tmp_path / "s.db")
    result = run("stats", "--db", tmp_path / "s.db", "--json")
    stats = json.loads(result.stdout)
    assert stats["samples"] == 2 and stats["datasets"] == {"d": 2}
    assert stats["flagged_samples"] == {"empty_output": 1}
    assert stats["samples_by_status"]["undecided"] == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("import", "nope.json"), "nope.json: no such file or directory"),
        (("export", "--out", "x.json", "--dataset", "ghost"), "no dataset 'ghost'"),
        (("export", "--out", "x.json"), "has no datasets yet"),
    ],
)
def test_errors_are_one_line_and_exit_non_zero(tmp_path, args, message):
    result = run(*args, "--db", tmp_path / "e.db", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.startswith("Error: ") and message in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def test_malformed_file_error_names_the_line(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"instruction": "a", "output": "b"}\n{"instruction": 5, "output": "b"}\n')
    result = run("import", bad, "--db", tmp_path / "e.db")
    assert result.returncode == 1
    assert f"{bad}, line 2: field 'instruction' must be text, not a number" in result.stderr


def _commands(group, prefix=()):
    for name, command in group.commands.items():
        if hasattr(command, "commands"):
            yield from _commands(command, (*prefix, name))
        else:
            yield (*prefix, name)


@pytest.mark.parametrize("command", sorted(_commands(main)), ids=" ".join)
def test_every_command_has_help_with_an_example(command):
    result = run(*command, "--help")
    assert result.returncode == 0
    assert "Example" in result.stdout, f"`reflection {' '.join(command)} --help` has no example"


def test_demo_build_only(tmp_path):
    result = run("demo", "--db", tmp_path / "demo.db", "--build-only")
    assert result.returncode == 0, result.stderr
    stats = json.loads(run("stats", "--db", tmp_path / "demo.db", "--json").stdout)
    assert stats["datasets"]["demo"] >= 60
    assert stats["candidates_by_kind"]["instruction"] >= 60
