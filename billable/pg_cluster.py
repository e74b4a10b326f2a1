"""A throwaway PostgreSQL cluster: `initdb` in a temporary folder, a free loopback port, stopped and
removed at the end. The tests and `make bench` use it to run the warehouse on PostgreSQL without a
server of their own; a real deployment points BILLABLE_PG_* at its shared server (docs/deploy.md).

    with ThrowawayCluster() as cluster:
        print(cluster.dsn())          # postgresql://postgres@127.0.0.1:PORT/postgres

PostgreSQL refuses to run as root: as root the cluster runs as the `postgres` system user (or the
user named in BILLABLE_PG_OS_USER), which owns the temporary folder. The server is started with
`pg_ctl -w` and stopped with `-m immediate` (a throwaway cluster has nothing to flush); if the
Python process is killed first, the server sees its parent gone only at the next stop, so the
folder name (`billable-pg-*` under the temp dir) says what to clean.

`python -m billable.pg_cluster` starts one and prints its environment (BILLABLE_PG_*), for trying
the PostgreSQL engine by hand; Ctrl-C stops it.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType

BIN_CANDIDATES = ("/usr/lib/postgresql/15/bin", "/usr/lib/postgresql/16/bin", "/usr/local/bin", "/usr/bin")


def pg_bin(name: str) -> str:
    """The path of a PostgreSQL server binary (initdb, pg_ctl), preferring version 15's."""
    for folder in BIN_CANDIDATES:
        candidate = Path(folder) / name
        if candidate.exists():
            return str(candidate)
    found = shutil.which(name)
    if not found:
        looked = ", ".join(BIN_CANDIDATES)
        raise FileNotFoundError(f"PostgreSQL's {name} is not installed (looked in {looked})")
    return found


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class ThrowawayCluster:
    """One PostgreSQL cluster for the life of a `with` block (or start()/stop())."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.folder: Path | None = None
        self.user = "postgres"  # the database superuser
        # a password of its own: dlt's PostgreSQL credentials need one, and loopback TCP asks for it
        self.password = secrets.token_hex(12)
        self.reader: tuple[str, str] | None = None

    @property
    def data_dir(self) -> Path:
        assert self.folder is not None, "the cluster is not started"
        return self.folder / "data"

    def _as_owner(self, command: list[str]) -> list[str]:
        if os.geteuid() != 0:
            return command
        return ["runuser", "-u", os.environ.get("BILLABLE_PG_OS_USER", "postgres"), "--", *command]

    def start(self) -> ThrowawayCluster:
        self.folder = Path(tempfile.mkdtemp(prefix="billable-pg-"))
        owner = pwd.getpwnam(os.environ.get("BILLABLE_PG_OS_USER", "postgres")) if os.geteuid() == 0 else None
        if owner:
            os.chown(self.folder, owner.pw_uid, owner.pw_gid)
        password_file = self.folder / "password"
        password_file.write_text(self.password + "\n")
        if owner:
            os.chown(password_file, owner.pw_uid, owner.pw_gid)
        self._run([pg_bin("initdb"), "-D", str(self.data_dir), "-U", self.user, "--auth-local=trust",
                   "--auth-host=scram-sha-256", f"--pwfile={password_file}", "--encoding=UTF8", "--locale=C",
                   "--no-sync"])  # fmt: skip
        password_file.unlink()
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.folder} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
            "-c max_connections=100 -c shared_buffers=256MB"
        )
        log = self.folder / "server.log"
        data = str(self.data_dir)
        self._run([pg_bin("pg_ctl"), "-D", data, "-o", options, "-l", str(log), "-w", "-t", "60", "start"])
        return self

    def stop(self) -> None:
        if self.folder is None:
            return
        if (self.data_dir / "postmaster.pid").exists():
            subprocess.run(
                self._as_owner([pg_bin("pg_ctl"), "-D", str(self.data_dir), "-m", "immediate", "-w", "stop"]),
                capture_output=True,
                check=False,
            )
        shutil.rmtree(self.folder, ignore_errors=True)
        self.folder = None

    def _run(self, command: list[str]) -> None:
        done = subprocess.run(self._as_owner(command), capture_output=True, text=True, check=False)
        if done.returncode != 0:
            log = self.folder / "server.log" if self.folder else None
            tail = log.read_text()[-2000:] if log and log.exists() else ""
            name = Path(command[0]).name
            raise RuntimeError(f"{name} failed ({done.returncode}): {done.stderr.strip()}\n{tail}")

    def dsn(self, database: str = "postgres") -> str:
        return f"postgresql://{self.user}:{self.password}@127.0.0.1:{self.port}/{database}"

    def environment(self, database: str = "billable") -> dict[str, str]:
        """The settings that run the whole pipeline on this cluster: the engine, and the connection
        in dlt's usual configuration (the same key as `[destination.postgres] credentials` in
        .dlt/secrets.toml), which billable.engine hands on to dbt and the readers."""
        settings = {
            "BILLABLE_ENGINE": "postgres",
            "DESTINATION__POSTGRES__CREDENTIALS": self.dsn(database),
        }
        if self.reader:  # the readers' read-only role, when create_reader made one
            role, password = self.reader
            reader = f"postgresql://{role}:{password}@127.0.0.1:{self.port}/{database}"
            settings["BILLABLE__POSTGRES__READER_CREDENTIALS"] = reader
        return settings

    def create_reader(self, role: str = "billable_reader") -> str:
        """A login role with no rights of its own (the publish step grants it the published schemas);
        its DSN for `billable.postgres.reader_credentials`."""
        import psycopg2

        password = secrets.token_hex(12)
        connection = psycopg2.connect(self.dsn())
        try:
            connection.autocommit = True
            with connection.cursor() as cursor:
                cursor.execute(f'create role "{role}" login password %s', [password])
        finally:
            connection.close()
        self.reader = (role, password)
        return f"postgresql://{role}:{password}@127.0.0.1:{self.port}"

    def create_database(self, name: str) -> None:
        import psycopg2

        connection = psycopg2.connect(self.dsn())
        try:
            connection.autocommit = True
            with connection.cursor() as cursor:
                cursor.execute(f'create database "{name}"')
        finally:
            connection.close()

    def __enter__(self) -> ThrowawayCluster:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()


def main() -> int:
    def stop_on_term(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop_on_term)  # `kill` stops and removes the cluster too
    with ThrowawayCluster() as cluster:
        cluster.create_database("billable")
        cluster.create_reader()
        for key, value in cluster.environment().items():
            print(f"export {key}={value}")
        where = f"127.0.0.1:{cluster.port}, database billable"
        print(f"# a throwaway PostgreSQL 15 ({where}); Ctrl-C stops and removes it", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            return 0


if __name__ == "__main__":
    sys.exit(main())
