"""Where a system's OAuth tokens live between runs: one JSON file per system, outside the repository
and the warehouse (default `data/credentials/<system>.json`, `sources.<system>.token_store`).

The file is mode 0600 in a 0700 folder. Every write is atomic and durable: a temporary file in the
same folder, fsync, rename over the old one, fsync of the folder; a process killed at any instant
leaves the old file or the new one, never a mix or nothing. `locked()` is an exclusive `flock` on
`<file>.lock`, held across read-refresh-write, so two processes refreshing at once take turns and
the second finds (and uses) what the first stored instead of spending a rotated refresh token.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


class TokenStoreError(RuntimeError):
    """The store cannot be read or written: the message names the file and why (never its content)."""


class TokenStore:
    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)

    def read(self) -> dict[str, Any] | None:
        """The stored record, or None when there is none yet."""
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return None
        except OSError as err:
            raise TokenStoreError(f"cannot read the token store {self.path}: {err.strerror}") from None
        try:
            record = json.loads(text)
        except ValueError:
            raise TokenStoreError(f"the token store {self.path} is not valid JSON") from None
        if not isinstance(record, dict):
            raise TokenStoreError(f"the token store {self.path} does not hold a JSON object")
        return record

    def write(self, record: dict[str, Any]) -> None:
        """Replace the record atomically and durably (see the module doc)."""
        folder = self.path.parent
        try:
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd, temp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=folder)
        except OSError as err:
            raise TokenStoreError(f"cannot write the token store {self.path}: {err.strerror}") from None
        try:
            with os.fdopen(fd, "w") as handle:  # mkstemp creates it 0600
                json.dump(record, handle, indent=2, sort_keys=True)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp, self.path)
            directory = os.open(folder, os.O_RDONLY)
            try:
                os.fsync(directory)
            finally:
                os.close(directory)
        except OSError as err:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise TokenStoreError(f"cannot write the token store {self.path}: {err.strerror}") from None

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Exclusive across processes (flock on `<file>.lock`), for read-refresh-write."""
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(self.path.with_name(self.path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as err:
            raise TokenStoreError(f"cannot lock the token store {self.path}: {err.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock
