"""`.ci/run` exits with pytest's own status, whatever its closing summary finds.

Stop 19's CI failed with every test passed: the summary grepped the log for FAILED lines under
`set -e -o pipefail`, found none, and grep's status 1 became the run's. These tests run the real
script with stand-ins for the programs it calls (pip, ruff, mypy, pytest all go through
`python3`), so only its own control flow is under test.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

FAKE_PYTHON = """#!/bin/bash
case "$*" in
  *"-m pytest"*)
    echo "..F"
    echo "============================= slowest 15 durations ============================="
    echo "1.00s call     tests/test_x.py::test_a"
    if [ "$FAKE_RC" = 0 ]; then echo "3 passed in 1.00s"; else
      echo "FAILED tests/test_x.py::test_b - assert 1 == 2"; echo "1 failed, 2 passed in 1.00s"; fi
    exit "$FAKE_RC";;
  *) exit 0;;
esac
"""


def run_ci(tmp_path: Path, rc: int) -> subprocess.CompletedProcess[str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for name, body in {
        "python3": FAKE_PYTHON,
        "chromium": "#!/bin/sh\nexit 0\n",  # present: nothing to install from Debian
        "initdb": "#!/bin/sh\nexit 0\n",
    }.items():
        path = bin_dir / name
        path.write_text(body)
        path.chmod(0o755)
    env = {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "TMPDIR": str(tmp_path),
        "FAKE_RC": str(rc),
    }
    return subprocess.run(
        ["bash", str(ROOT / ".ci" / "run")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_passing_suite_makes_a_passing_run(tmp_path: Path) -> None:
    done = run_ci(tmp_path, 0)
    assert done.returncode == 0, done.stderr
    # The verdict is said again at the very end, on stderr.
    assert "== tests: exit 0" in done.stderr
    assert done.stderr.rstrip().endswith("3 passed in 1.00s")


@pytest.mark.parametrize("rc", [1, 2])
def test_a_failing_suite_makes_a_failing_run_that_names_the_failure(
    tmp_path: Path, rc: int
) -> None:
    done = run_ci(tmp_path, rc)
    assert done.returncode == rc
    tail = done.stderr.splitlines()[-3:]
    assert "FAILED tests/test_x.py::test_b - assert 1 == 2" in tail
    assert tail[-1] == "1 failed, 2 passed in 1.00s"


def test_the_summary_alone_never_fails(tmp_path: Path) -> None:
    log = tmp_path / "empty.log"
    log.write_text("")
    done = subprocess.run(
        [str(ROOT / ".ci" / "summarize"), str(log), "0"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        env={**os.environ},
    )
    assert done.returncode == 0
    assert done.stdout.startswith("== tests: exit 0")
