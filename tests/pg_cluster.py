"""A throw-away PostgreSQL cluster on 127.0.0.1 for the tests: initdb, pg_ctl start, stop.

Debian's `postgresql` package (installed by .ci/run) puts its programs in
/usr/lib/postgresql/<version>/bin. PostgreSQL refuses to run as root, so as root the cluster
belongs to the `postgres` user. Durability is off (fsync, synchronous_commit): a test cluster
is thrown away, and the tests are about behaviour, not crash safety of the server itself.

Each test gets its own database, copied from a template that already holds the migrated
schema (CREATE DATABASE ... TEMPLATE is a file copy: tens of milliseconds).
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

TEMPLATE = "reflection_template"


def pg_bin() -> Path | None:
    """The folder with initdb and pg_ctl, or None where PostgreSQL is not installed."""
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(found).parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    return Path(versions[0]).parent if versions else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_memory() -> dict[str, str]:
    """Memory settings as a team server's should be (PostgreSQL's own guidance): shared
    buffers a quarter of the machine's memory, the planner told the OS cache holds half.
    The default 128 MB of shared buffers made a search at 1,000,000 samples read its pages
    from the OS cache on every run: a rare word took 82-96 ms, 26-34 with 4 GB."""
    total_mb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20
    return {"shared_buffers": f"{min(total_mb // 4, 8192)}MB",
            "effective_cache_size": f"{total_mb // 2}MB"}  # fmt: skip


def memory_of(url: str) -> str:
    """A server's memory settings, as a benchmark reports them beside its figures."""
    import psycopg

    with psycopg.connect(url) as conn:
        names = ("shared_buffers", "effective_cache_size", "work_mem")
        return ", ".join(f"{n} {conn.execute(f'SHOW {n}').fetchone()[0]}" for n in names)  # type: ignore[index]


class PgCluster:
    def __init__(self, bindir: Path, settings: dict[str, str] | None = None):
        """`settings`: server settings beyond the test defaults (`server_memory()`, say)."""
        self.bindir = bindir
        self.settings = settings or {}
        self.root = Path(tempfile.mkdtemp(prefix="reflection-pg-"))
        self.data = self.root / "data"
        self.port = _free_port()
        self.user = "postgres" if os.geteuid() == 0 else None
        self._names = itertools.count(1)

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        command = [str(self.bindir / args[0]), *args[1:]]
        if self.user:
            command = ["runuser", "-u", self.user, "--", *command]
        return subprocess.run(command, capture_output=True, text=True, check=check)

    def start(self) -> PgCluster:
        if self.user:
            shutil.chown(self.root, self.user, self.user)
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "--no-sync",
                  "-E", "UTF8", "--locale", "C")  # fmt: skip
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root}"
            " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
            " -c max_connections=200"
        ) + "".join(f" -c {key}={value}" for key, value in self.settings.items())
        self.options = options
        self.start_server()
        return self

    def start_server(self) -> None:
        done = self._run("pg_ctl", "-D", str(self.data), "-o", self.options, "-w", "-t", "60",
                         "-l", str(self.root / "server.log"), "start", check=False)  # fmt: skip
        if done.returncode:
            log = (self.root / "server.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"pg_ctl start failed: {done.stderr}\n{log}")

    def stop_server(self) -> None:
        """Stop the server (fast: open sessions are cut off), keeping its data."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def admin(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(sql)  # type: ignore[arg-type]

    def make_template(self) -> None:
        """A database with every migration applied, to copy for each test."""
        from reflection.store import Store

        self.admin(f"CREATE DATABASE {TEMPLATE}")
        with Store(self.url(TEMPLATE)):
            pass  # closing the last Store closes its pool: the template has no session left

    def new_database(self) -> str:
        """A fresh, migrated database; its URL."""
        name = f"t{next(self._names)}"
        self.admin(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE}")
        return self.url(name)

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "stop", check=False)
        shutil.rmtree(self.root, ignore_errors=True)


@contextlib.contextmanager
def throwaway_database(name: str) -> Iterator[str]:
    """For a program of its own (a benchmark): a cluster started for it, with a team
    server's memory settings (`server_memory`), holding one empty database `name`, whose URL
    it yields; stopped and deleted afterwards."""
    bindir = pg_bin()
    if bindir is None:
        raise SystemExit("PostgreSQL is not installed (Debian: apt-get install postgresql)")
    cluster = PgCluster(bindir, server_memory()).start()
    try:
        cluster.admin(f"CREATE DATABASE {name}")
        yield cluster.url(name)
    finally:
        cluster.stop()
