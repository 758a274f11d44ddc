"""`reflection app` as a supervisor runs it: where it listens, what it refuses, how it stops.

Real processes: `python -m reflection app` starts Streamlit as its child; the test reads the
listening socket from /proc/net/tcp, sends a signal to the `reflection` process only, and
then checks that the port is closed and the child is gone.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import browser_support as support
import pytest
from browser_support import free_port

from reflection.cli.serve import is_loopback
from reflection.store import Store
from reflection.team import accounts

pytestmark = pytest.mark.slow

LOOPBACK_HEX, ANY_HEX = "0100007F", "00000000"


def reflection(*args: str) -> list[str]:
    return [sys.executable, "-m", "reflection", *args]


def listening(port: int) -> set[str]:
    """Addresses (hex, as /proc/net/tcp writes them) with a socket listening on `port`."""
    found = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        address, hex_port = local.split(":")
        if state == "0A" and int(hex_port, 16) == port:
            found.add(address)
    return found


def children(pid: int) -> list[int]:
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return [int(p) for p in text.split()]


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def wait_healthy(process: subprocess.Popen, port: int, timeout: float = 90) -> None:
    def output() -> str:  # a pipe: read only once the process has exited, or it blocks
        return process.stdout.read() if process.poll() is not None else "(still running)"

    support.wait_healthy(f"http://127.0.0.1:{port}", process, output, timeout, "reflection app")


@pytest.mark.parametrize(
    ("host", "expected"),
    [("127.0.0.1", True), ("127.0.0.2", True), ("::1", True), ("[::1]", True),
     ("localhost", True), ("0.0.0.0", False), ("192.168.1.4", False), ("::", False),
     ("example.org", False)],
)  # fmt: skip
def test_loopback_addresses(host, expected):
    assert is_loopback(host) is expected


def test_another_address_without_sign_in_is_refused(tmp_path):
    db = tmp_path / "app.db"
    result = subprocess.run(
        reflection("app", "--db", str(db), "--host", "0.0.0.0", "--headless"),
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr == (
        "Error: refusing to serve on 0.0.0.0 without sign-in: add an account (reflection users"
        " add NAME --role admin), configure OIDC in .streamlit/secrets.toml, or pass --no-auth\n"
    )
    assert result.stdout == ""


def test_a_data_root_must_be_a_folder(tmp_path):
    result = subprocess.run(
        reflection("app", "--db", str(tmp_path / "a.db"), "--data-root", str(tmp_path / "no")),
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 1 and "not a folder" in result.stderr


@pytest.mark.parametrize(
    ("sig", "options", "address"),
    [
        (signal.SIGTERM, [], LOOPBACK_HEX),
        (signal.SIGINT, ["--host", "0.0.0.0", "--no-auth"], ANY_HEX),
        (signal.SIGKILL, [], LOOPBACK_HEX),  # no chance to pass it on: the child still ends
    ],
    ids=["SIGTERM", "SIGINT-no-auth", "SIGKILL"],
)
def test_a_signal_stops_the_server_and_closes_the_port(tmp_path, sig, options, address):
    db, port = tmp_path / "app.db", free_port()
    process = subprocess.Popen(
        reflection("app", "--db", str(db), "--port", str(port), "--headless", *options),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,  # the signal goes to `reflection` alone, as `kill PID` does
    )  # fmt: skip
    try:
        wait_healthy(process, port)
        assert listening(port) == {address}
        [child] = children(process.pid)
        cmdline = Path(f"/proc/{child}/cmdline").read_text().split("\0")
        assert "streamlit" in cmdline
        assert cmdline[cmdline.index("--client.toolbarMode") + 1] == "viewer"
        os.kill(process.pid, sig)
        code = process.wait(timeout=60)
        deadline = time.monotonic() + 30
        while alive(child) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not alive(child)
        assert not port_open(port)
        assert listening(port) == set()
        output = process.stdout.read()
        if sig != signal.SIGKILL:
            assert code == 0
            assert "Serving" in output
        if "--no-auth" in options:
            assert "Warning: serving on 0.0.0.0 without sign-in (--no-auth)" in output
    finally:
        if process.poll() is None:
            process.kill()


def test_sign_in_lets_it_listen_on_another_address(tmp_path):
    db, port = tmp_path / "app.db", free_port()
    with Store(db) as store:
        accounts.add_user(store, "ana", "admin", actor="t", password="long enough")
    process = subprocess.Popen(
        reflection("app", "--db", str(db), "--port", str(port), "--headless", "--host", "0.0.0.0"),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )  # fmt: skip
    try:
        wait_healthy(process, port)
        os.kill(process.pid, signal.SIGTERM)
        assert process.wait(timeout=60) == 0
        output = process.stdout.read()
        assert "sign-in on" in output and "Warning" not in output
        assert not port_open(port)
    finally:
        if process.poll() is None:
            process.kill()
