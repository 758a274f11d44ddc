"""The local oracle's launcher: llama.cpp's AMX weight buffers are off on CPUs with AMX.

With them on, llama-cpp-python 0.3.36 dies of SIGSEGV on its first decode on such a CPU, and
every request to the local oracle fails as a dropped connection.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from reflection.reflect import llama_server
from reflection.reflect.llama_server import NO_EXTRA, cpu_has_amx
from reflection.reflect.local_oracle import server_command

SAPPHIRE = "processor\t: 0\nflags\t\t: fpu sse avx512f amx_bf16 amx_tile amx_int8\n"
ZEN = "processor\t: 0\nflags\t\t: fpu sse avx2 avx512f\n"


@pytest.mark.parametrize(("text", "expected"), [(SAPPHIRE, True), (ZEN, False), ("", False)])
def test_amx_is_read_from_the_cpu_flags(tmp_path, text, expected):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(text)
    assert cpu_has_amx(cpuinfo) is expected


def test_an_unreadable_cpuinfo_means_no_amx(tmp_path):
    assert cpu_has_amx(tmp_path / "missing") is False


@pytest.mark.parametrize("amx", [True, False])
def test_the_server_runs_without_extra_buffers_exactly_where_the_cpu_has_amx(monkeypatch, amx):
    pytest.importorskip("llama_cpp")
    monkeypatch.setattr("reflection.reflect.local_oracle.cpu_has_amx", lambda: amx)
    command = server_command(8080)
    assert command[1:3] == ["-m", "reflection.reflect.llama_server"]
    assert (NO_EXTRA in command) is amx
    assert command[command.index("--interrupt_requests") + 1] == "False"
    assert NO_EXTRA not in server_command(8080, extra_buffers=True)
    assert NO_EXTRA in server_command(8080, extra_buffers=False)


def test_the_launcher_clears_use_extra_bufts_in_the_model_parameters():
    pytest.importorskip("llama_cpp")
    probe = (
        "import llama_cpp.llama_cpp as n\n"
        "before = n.llama_model_default_params().use_extra_bufts\n"
        "from reflection.reflect.llama_server import disable_extra_buffers\n"
        "disable_extra_buffers(); disable_extra_buffers()\n"
        "print(before, n.llama_model_default_params().use_extra_bufts)\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["True", "False"]


def test_the_launcher_drops_its_own_flag_before_the_server_reads_its_arguments(monkeypatch):
    ran: list[list[str]] = []
    cleared: list[bool] = []
    monkeypatch.setattr(llama_server, "disable_extra_buffers", lambda: cleared.append(True))
    monkeypatch.setattr(llama_server.runpy, "run_module", lambda *a, **k: ran.append(sys.argv[1:]))
    monkeypatch.setattr(sys, "argv", sys.argv[:])
    llama_server.main([NO_EXTRA, "--model", "m.gguf"])
    assert ran == [["--model", "m.gguf"]] and cleared == [True]
    llama_server.main(["--model", "m.gguf"])
    assert ran[-1] == ["--model", "m.gguf"] and cleared == [True]
