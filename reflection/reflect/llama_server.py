"""Runs llama-cpp-python's OpenAI-compatible server, with llama.cpp's AMX kernels off on CPUs
that have AMX.

On a CPU with AMX (Intel Sapphire Rapids and later) llama.cpp moves Q4_0/Q4_1/Q8_0 weights
into an AMX "extra buffer". With llama-cpp-python 0.3.36 built from source (``-march=native``),
the first decode then dies of SIGSEGV in ``ggml_backend_amx_mul_mat``: the server drops the
connection and every request fails. ``Llama`` does not expose llama.cpp's ``use_extra_bufts``,
so this launcher clears it in the default model parameters before the server loads the model.
On a CPU without AMX nothing changes (``server_command(extra_buffers=True)`` keeps them on
regardless).

    python -m reflection.reflect.llama_server [--no-extra-buffers] <llama_cpp.server arguments>
"""

from __future__ import annotations

import runpy
import sys
from pathlib import Path
from typing import Any

CPUINFO = Path("/proc/cpuinfo")
NO_EXTRA = "--no-extra-buffers"


def cpu_has_amx(cpuinfo: Path = CPUINFO) -> bool:
    """Whether the CPU reports AMX tiles (Linux /proc/cpuinfo; False where unreadable)."""
    try:
        text = cpuinfo.read_text(errors="replace")
    except OSError:
        return False
    for line in text.splitlines():
        if line.startswith("flags"):
            return "amx_tile" in line.split(":", 1)[-1].split()
    return False


def disable_extra_buffers() -> None:
    """Make every model llama-cpp-python loads from now on skip llama.cpp's extra buffer types
    (the AMX and repacked weight layouts) and keep its weights in plain CPU buffers."""
    import llama_cpp.llama_cpp as native

    default = native.llama_model_default_params
    if getattr(default, "extra_buffers_off", False):
        return

    def params() -> Any:
        found = default()
        found.use_extra_bufts = False
        return found

    params.extra_buffers_off = True  # type: ignore[attr-defined]
    native.llama_model_default_params = params


def main(argv: list[str]) -> None:
    if NO_EXTRA in argv:
        argv = [arg for arg in argv if arg != NO_EXTRA]
        disable_extra_buffers()
    sys.argv = ["llama_cpp.server", *argv]
    runpy.run_module("llama_cpp.server", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main(sys.argv[1:])
