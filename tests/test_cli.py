"""The `reflection` command. In process through click's CliRunner, which runs the same group
the console script does; the installed script itself, and what a real process shows on a
failure (its exit status, one line on stderr), in a subprocess."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
from click.testing import CliRunner
from conftest import ALPACA_PATH

from reflection.cli import main

REFLECTION = shutil.which("reflection")


def run(*args, env=None):
    """`reflection ARGS` in this process; a bug raises instead of becoming an exit status."""
    return CliRunner(catch_exceptions=False).invoke(main, [*map(str, args)], env=env)


def test_the_console_script_is_installed_and_runs(tmp_path):
    assert REFLECTION, "pip install -e . installs the `reflection` console script"
    shown = subprocess.run([REFLECTION, "--version"], capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0 and "version" in shown.stdout, shown.stderr
    # An error in a real process: exit status 1 and one line on stderr, no traceback.
    failed = subprocess.run(
        [REFLECTION, "import", "nope.json", "--db", str(tmp_path / "e.db")],
        capture_output=True, text=True, cwd=tmp_path, timeout=60,
    )  # fmt: skip
    assert failed.returncode == 1
    assert failed.stderr == "Error: nope.json: no such file or directory\n"
    assert failed.stdout == ""


def test_import_then_export_gives_back_every_record(tmp_path, alpaca_records):
    n = len(alpaca_records)
    db = tmp_path / "r.db"
    first = run("import", ALPACA_PATH, "--db", db)
    assert first.exit_code == 0, first.output
    assert f"{n} added, 0 skipped" in first.stdout
    again = run("import", ALPACA_PATH, "--db", db)
    assert f"0 added, {n} skipped" in again.stdout
    out = tmp_path / "back.json"
    exported = run(
        "export", "--db", db, "--undecided", "original", "--format", "alpaca", "--out", out
    )
    assert exported.exit_code == 0, exported.output
    assert f"Wrote {n} records" in exported.stdout
    back = json.loads(out.read_text())
    assert [(r["instruction"], r["input"], r["output"]) for r in back] == [
        (r["instruction"], r["input"], r["output"]) for r in alpaca_records
    ]


def test_db_defaults_to_the_environment_then_the_current_folder(tmp_path, monkeypatch):
    data = tmp_path / "d.jsonl"
    data.write_text('{"instruction": "a", "output": "b"}\n')
    monkeypatch.chdir(tmp_path)
    assert run("import", data, env={"REFLECTION_DB": str(tmp_path / "env.db")}).exit_code == 0
    assert (tmp_path / "env.db").exists() and not (tmp_path / "reflection.db").exists()
    assert run("import", data, env={"REFLECTION_DB": None}).exit_code == 0
    assert (tmp_path / "reflection.db").exists()


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
def test_errors_are_one_line_and_exit_non_zero(tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    result = run(*args, "--db", tmp_path / "e.db")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: ") and message in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def test_malformed_file_error_names_the_line(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"instruction": "a", "output": "b"}\n{"instruction": 5, "output": "b"}\n')
    result = run("import", bad, "--db", tmp_path / "e.db")
    assert result.exit_code == 1
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
    assert result.exit_code == 0
    assert "Example" in result.stdout, f"`reflection {' '.join(command)} --help` has no example"


def test_demo_build_only(tmp_path):
    result = run("demo", "--db", tmp_path / "demo.db", "--build-only")
    assert result.exit_code == 0, result.output
    stats = json.loads(run("stats", "--db", tmp_path / "demo.db", "--json").stdout)
    assert stats["datasets"]["demo"] >= 60
    assert stats["candidates_by_kind"]["instruction"] >= 60
