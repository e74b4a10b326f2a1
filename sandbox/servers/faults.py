"""Injected faults: rate limits, 5xx, dropped connections, slowness, commit-then-drop, drift, malformed.

Every random choice is a hash of (seed, fault kind, method, path+query, n) where n counts earlier
requests with the same method and target. A retry therefore draws afresh, and the same request
sequence fails the same way whatever the thread timing.
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
from collections import defaultdict, deque
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import TypeVar

import numpy as np

T = TypeVar("T")

# The systems' documented limits: (requests, window seconds); QuickBooks also caps concurrency
# and, apart from that, its batch endpoint: 40 batch requests per minute per realm (a batch also
# counts as one of the 500). A window kind `k` reads `k_requests` / `k_window_s`.
DEFAULT_LIMITS: dict[str, dict[str, float]] = {
    "harvest": {"requests": 100, "window_s": 15},
    "quickbooks": {
        "requests": 500,
        "window_s": 60,
        "concurrent": 10,
        "batch_requests": 40,
        "batch_window_s": 60,
    },
    "salesforce": {"requests": 25, "window_s": 1},
    "kantata": {"requests": 25, "window_s": 1},
}
RATES = ("error_rate", "drop_rate", "commit_drop_rate", "malformed_rate")


class FaultConfigError(ValueError):
    """A fault setting that makes no sense; the message names it."""


@dataclass
class FaultConfig:
    """The switchable faults (names as the `serve` flags)."""

    rate_limit: bool = False
    error_rate: float = 0.0
    drop_rate: float = 0.0
    slow_ms: int = 0
    commit_drop_rate: float = 0.0
    drift_from: str | None = None
    malformed_rate: float = 0.0
    limits: dict[str, dict[str, float]] = field(default_factory=dict)

    def update(self, values: dict) -> None:
        """Apply settings from a JSON body or flags, validating each one."""
        for name, value in values.items():
            if name in RATES:
                rate = float(value)
                if not 0.0 <= rate <= 1.0:
                    raise FaultConfigError(f"{name} must be between 0 and 1, got {value!r}")
                setattr(self, name, rate)
            elif name == "slow_ms":
                if int(value) < 0:
                    raise FaultConfigError(f"slow_ms must be >= 0, got {value!r}")
                self.slow_ms = int(value)
            elif name == "rate_limit":
                self.rate_limit = bool(value)
            elif name == "drift_from":
                if value is not None:
                    try:
                        datetime.fromisoformat(str(value)[:10])
                    except ValueError:
                        raise FaultConfigError(
                            f"drift_from must be a date YYYY-MM-DD, got {value!r}"
                        ) from None
                self.drift_from = None if value is None else str(value)[:10]
            elif name == "limits":
                for system, limit in dict(value).items():
                    if system not in DEFAULT_LIMITS:
                        raise FaultConfigError(
                            f"limits: unknown system {system!r}; known {list(DEFAULT_LIMITS)}"
                        )
                    parsed = {}
                    for key, number in dict(limit).items():
                        if key not in DEFAULT_LIMITS[system]:
                            raise FaultConfigError(
                                f"limits.{system}: unknown limit {key!r}; "
                                f"known {list(DEFAULT_LIMITS[system])}"
                            )
                        try:
                            parsed[key] = float(number)
                        except (TypeError, ValueError):
                            parsed[key] = -1.0
                        if parsed[key] < 0:
                            raise FaultConfigError(
                                f"limits.{system}.{key} must be a number >= 0, got {number!r}"
                            )
                    self.limits.setdefault(system, {}).update(parsed)
            else:
                raise FaultConfigError(f"unknown fault {name!r}; known: {', '.join(asdict(FaultConfig()))}")

    def limit(self, system: str) -> dict[str, float]:
        return {**DEFAULT_LIMITS[system], **self.limits.get(system, {})}

    @property
    def drift_us(self) -> int | None:
        if not self.drift_from:
            return None
        moment = datetime.fromisoformat(self.drift_from).replace(tzinfo=UTC)
        return int(moment.timestamp() * 1_000_000)


def _unit(*parts: object) -> float:
    """A uniform draw in [0, 1) from the hash of `parts`."""
    digest = hashlib.blake2b("\x1f".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def _mix(values: np.ndarray) -> np.ndarray:
    """splitmix64 over uint64 (wrapping arithmetic): a stable per-record hash, vectorised."""
    with np.errstate(over="ignore"):
        z = values + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


@dataclass
class Ticket:
    """One request's identity for fault draws."""

    method: str
    target: str
    occurrence: int


class Faults:
    """The current fault settings, their deterministic draws, rate-limit windows and the log."""

    def __init__(self, seed: int, config: FaultConfig | None = None):
        self.seed = seed
        self.config = config or FaultConfig()
        self._lock = threading.Lock()
        self._occurrences: dict[tuple[str, str], int] = defaultdict(int)
        self._windows: dict[tuple[str, str, str], deque[float]] = defaultdict(deque)
        self._in_flight: dict[tuple[str, str], int] = defaultdict(int)
        self._log: list[dict] = []

    # --- settings ---------------------------------------------------------------------
    def set(self, values: dict) -> None:
        """Merge settings and restart the draw counters and windows (a fresh, repeatable run)."""
        candidate = FaultConfig(**{**asdict(self.config)})
        candidate.update(values)
        with self._lock:
            self.config = candidate
            self._reset()

    def clear(self) -> None:
        with self._lock:
            self.config = FaultConfig()
            self._reset()

    def _reset(self) -> None:
        self._occurrences.clear()
        self._windows.clear()
        self._in_flight.clear()

    def describe(self) -> dict:
        config = asdict(self.config)
        config["effective_limits"] = {system: self.config.limit(system) for system in DEFAULT_LIMITS}
        return config

    # --- draws --------------------------------------------------------------------------
    def ticket(self, method: str, target: str) -> Ticket:
        with self._lock:
            occurrence = self._occurrences[(method, target)]
            self._occurrences[(method, target)] = occurrence + 1
        return Ticket(method, target, occurrence)

    def hit(self, kind: str, rate: float, ticket: Ticket) -> bool:
        """Whether fault `kind` strikes this request, at the given rate."""
        return rate > 0 and _unit(self.seed, kind, ticket.method, ticket.target, ticket.occurrence) < rate

    def pick(self, kind: str, options: tuple[T, ...], ticket: Ticket) -> T:
        draw = _unit(self.seed, kind, "pick", ticket.method, ticket.target, ticket.occurrence)
        return options[int(draw * len(options))]

    def record_masks(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(malformed, malformed-and-missing-id) masks for Harvest time entry ids, stable per id."""
        rate = self.config.malformed_rate
        if rate <= 0 or ids.size == 0:
            empty = np.zeros(ids.size, dtype=bool)
            return empty, empty
        base = ids.astype(np.int64).view(np.uint64) ^ np.uint64(self.seed & 0xFFFFFFFFFFFFFFFF)
        first = _mix(base)
        second = _mix(first ^ np.uint64(0x5DEECE66D))
        malformed = (first >> np.uint64(11)).astype(np.float64) / 2.0**53 < rate
        missing = malformed & ((second >> np.uint64(11)).astype(np.float64) / 2.0**53 < 0.1)
        return malformed, missing

    # --- rate limits --------------------------------------------------------------------
    def throttle(self, system: str, bucket: str, kind: str = "") -> int | None:
        """Count a request against its sliding window; seconds to wait if over the limit, else None.

        `kind` names a second window of the system (QuickBooks' "batch": its `batch_requests` per
        `batch_window_s`); a system without that limit, or a limit of 0, never throttles it."""
        if not self.config.rate_limit:
            return None
        limit = self.config.limit(system)
        prefix = f"{kind}_" if kind else ""
        allowed = limit.get(f"{prefix}requests")
        window = limit.get(f"{prefix}window_s")
        if not allowed or not window:
            return None
        now = time.monotonic()
        with self._lock:
            times = self._windows[(system, bucket, kind)]
            while times and times[0] <= now - window:
                times.popleft()
            if len(times) >= allowed:
                return max(1, math.ceil(times[0] + window - now))
            times.append(now)
        return None

    def enter(self, system: str, bucket: str) -> bool:
        """Take a concurrency slot (QuickBooks: 10 per realm); False when none is free."""
        limit = self.config.limit(system).get("concurrent")
        with self._lock:
            if self.config.rate_limit and limit is not None and self._in_flight[(system, bucket)] >= limit:
                return False
            self._in_flight[(system, bucket)] += 1
        return True

    def leave(self, system: str, bucket: str) -> None:
        with self._lock:
            self._in_flight[(system, bucket)] = max(0, self._in_flight[(system, bucket)] - 1)

    # --- log ----------------------------------------------------------------------------
    def log(self, ticket: Ticket, fault: str, **details: object) -> None:
        entry = {
            "method": ticket.method,
            "request": ticket.target,
            "occurrence": ticket.occurrence,
            "fault": fault,
            **details,
        }
        with self._lock:
            if len(self._log) < 100_000:
                self._log.append(entry)

    def entries(self) -> list[dict]:
        with self._lock:
            return list(self._log)

    def clear_log(self) -> None:
        with self._lock:
            self._log.clear()
