"""What a run tells its resources, and what they tell it back: the change cursor, the tables the
destination already has, the parts of a source that failed alone.

The change cursor lives in dlt's resource state, which dlt commits in the same load package as the
data. A run that dies before its package is loaded leaves the cursor where it was, so the next run
asks for the same changes again (and `merge` makes the replay harmless): the cursor can never get
ahead of the data.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime, timedelta

import dlt

# Re-ask for changes stamped this long before the cursor: a record committed at the source in the
# same instant as the last one we saw, but after our read, is not missed. Merge makes it harmless.
CURSOR_LOOKBACK = timedelta(minutes=5)


def cursor_since() -> str | None:
    """The cursor stored by the last loaded run of this resource, minus the lookback."""
    stored = dlt.current.resource_state().get("cursor")
    if not stored:
        return None
    return shift(stored, -CURSOR_LOOKBACK)


# The tables the runner found in the destination dataset before this run, when it found no load
# package pending; None (the default, e.g. a source run by other code) means "unknown": merge.
_DESTINATION_TABLES: ContextVar[frozenset[str] | None] = ContextVar("destination_tables", default=None)


def known_tables() -> frozenset[str] | None:
    """The tables the destination dataset had when the run started (None: not known)."""
    return _DESTINATION_TABLES.get()


@contextmanager
def destination_tables(names: Iterable[str] | None) -> Iterator[None]:
    """Tell `first_load` which tables the destination already has for the duration of the block."""
    token = _DESTINATION_TABLES.set(None if names is None else frozenset(names))
    try:
        yield
    finally:
        _DESTINATION_TABLES.reset(token)


# Parts of a source (QuickBooks realms) that failed alone while the rest of the source loaded; set up
# by the runner, which reports them as the source's failure once the rest has loaded.
_FAILED_PARTS: ContextVar[dict[str, str] | None] = ContextVar("failed_parts", default=None)


@contextmanager
def failed_parts() -> Iterator[dict[str, str]]:
    """Collect `part_failed` reports for the duration of the block: {part: message}."""
    failures: dict[str, str] = {}
    token = _FAILED_PARTS.set(failures)
    try:
        yield failures
    finally:
        _FAILED_PARTS.reset(token)


def part_failed(part: str, error: Exception) -> None:
    """Report that one part of a source (e.g. a realm) failed, so the rest can still load.

    Outside a `failed_parts` block nobody would report it, so the error is raised instead: a
    failure is never swallowed. The part's resources yield nothing more and leave their cursors
    where they were, so the next run asks for the same changes again.
    """
    failures = _FAILED_PARTS.get()
    if failures is None:
        raise error
    failures.setdefault(part, f"{type(error).__name__}: {error}")


def has_failed(part: str) -> bool:
    """Whether a part already failed in this run (its other resources then skip their calls)."""
    return part in (_FAILED_PARTS.get() or {})


def first_load(table: str) -> bool:
    """Whether this resource loads `table` for the very first time, so it may append, not merge.

    All three must hold: the runner saw no such table in the destination (and no load package
    pending, which could still create it), and this resource's state has neither a cursor nor a
    record of having landed rows (state is committed with the data, so a load that landed anything
    leaves one of them behind).
    """
    present = known_tables()
    if present is None or table in present:
        return False
    state = dlt.current.resource_state()
    return not state.get("cursor") and not state.get("landed")


def shift(stamp: str, delta: timedelta) -> str:
    """Move an ISO-8601 stamp, keeping its style (`Z`, or Salesforce's `.000+0000`)."""
    moment = datetime.fromisoformat(stamp.replace("Z", "+00:00").replace("+0000", "+00:00")) + delta
    if stamp.endswith("+0000"):
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
