"""Shared helpers: seeded random streams, the calendar, id formats and time conversions.

Times are carried as int64 seconds since the Unix epoch and dates as int32 days since the
epoch, so whole columns can be computed with numpy; they become ISO strings only on output.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import numpy as np
import polars as pl

from sandbox.generate.presets import CUTOVER_AT, Preset

DAY = 86_400
HOUR = 3_600
NEVER = np.int64(2**62)  # "this event never happens": later than any horizon
TS = pl.Datetime("us", "UTC")

LEGAL_ENTITIES: list[dict] = [
    {
        "code": "US",
        "name": "Billable Partners Inc.",
        "country": "US",
        "currency": "USD",
        "realm_id": "9130350000000001",
    },
    {
        "code": "UK",
        "name": "Billable Partners Ltd",
        "country": "GB",
        "currency": "GBP",
        "realm_id": "9130350000000002",
    },
    {
        "code": "DE",
        "name": "Billable Partners GmbH",
        "country": "DE",
        "currency": "EUR",
        "realm_id": "9130350000000003",
    },
]
ENTITY_CODES = [e["code"] for e in LEGAL_ENTITIES]
CURRENCIES = [e["currency"] for e in LEGAL_ENTITIES]
REALMS = [e["realm_id"] for e in LEGAL_ENTITIES]


def rng_for(seed: int, phase: str) -> np.random.Generator:
    """An independent PCG64 stream per phase, so adding draws in one phase leaves others alone."""
    return np.random.Generator(np.random.PCG64([seed, zlib.crc32(phase.encode())]))


def to_day(moment: date) -> int:
    return (moment - date(1970, 1, 1)).days


def day_to_date(day: int) -> date:
    return date(1970, 1, 1) + timedelta(days=int(day))


def to_secs(moment: datetime) -> int:
    return int(moment.timestamp())


def weekday(days: np.ndarray) -> np.ndarray:
    """Monday = 0 … Sunday = 6 (1970-01-01 was a Thursday)."""
    return (np.asarray(days) + 3) % 7


def add_weekdays(days: np.ndarray, n: np.ndarray | int) -> np.ndarray:
    """Add n weekdays (Mon–Fri) to weekday dates, vectorised."""
    days = np.asarray(days, dtype=np.int64)
    w = weekday(days)
    total = w + n
    return days + (total // 5) * 7 + (total % 5) - w


def month_start(days: np.ndarray) -> np.ndarray:
    months = np.asarray(days, dtype="datetime64[D]").astype("datetime64[M]")
    return months.astype("datetime64[D]").astype(np.int64)


def month_end(days: np.ndarray) -> np.ndarray:
    months = np.asarray(days, dtype="datetime64[D]").astype("datetime64[M]") + 1
    return months.astype("datetime64[D]").astype(np.int64) - 1


def month_index(days: np.ndarray) -> np.ndarray:
    """Months since 1970-01 of each day."""
    return np.asarray(days, dtype="datetime64[D]").astype("datetime64[M]").astype(np.int64)


def date_col(days: np.ndarray | pl.Series, name: str) -> pl.Series:
    """Days since epoch → `YYYY-MM-DD` strings (null where the day is negative sentinel)."""
    series = pl.Series(name, np.asarray(days), dtype=pl.Int64)
    return (
        pl.select(pl.when(series >= 0).then(series.cast(pl.Int32).cast(pl.Date).dt.to_string("%Y-%m-%d")))
        .to_series()
        .alias(name)
    )


def ts_col(secs: np.ndarray | pl.Series, name: str) -> pl.Series:
    """Seconds since epoch → ISO `…Z` strings; NEVER and beyond become null."""
    series = pl.Series(name, np.asarray(secs), dtype=pl.Int64)
    return (
        pl.select(
            pl.when(series < int(NEVER)).then(
                pl.from_epoch(series, time_unit="s")
                .dt.replace_time_zone("UTC")
                .dt.to_string("%Y-%m-%dT%H:%M:%SZ")
            )
        )
        .to_series()
        .alias(name)
    )


def valid_from(secs: np.ndarray | pl.Series) -> pl.Series:
    """Seconds since epoch → the `_valid_from` column (UTC microseconds)."""
    series = pl.Series("_valid_from", np.asarray(secs), dtype=pl.Int64)
    return (series * 1_000_000).cast(TS).alias("_valid_from")


def round_cents(values: np.ndarray) -> np.ndarray:
    """Round money to cents the way a ledger would (half away from zero, no float drift)."""
    values = np.asarray(values, dtype=np.float64)
    return np.sign(values) * np.floor(np.abs(values) * 100 + 0.5 + 1e-9) / 100


def sf_id(prefix: str, numbers: np.ndarray) -> list[str]:
    """Salesforce-style 18-character ids: 3-char key prefix, org part, base-62 counter, suffix."""
    alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
    out = []
    for number in np.asarray(numbers).tolist():
        chars = []
        for _ in range(7):
            number, rest = divmod(number, 62)
            chars.append(alphabet[rest])
        out.append(f"{prefix}Dn000{''.join(reversed(chars))}QAM")
    return out


@dataclass
class Calendar:
    """The world's dates: history start, the clock (= cutover) and the horizon."""

    preset: Preset
    start_day: int = 0
    clock: int = 0  # seconds
    horizon: int = 0  # seconds
    clock_day: int = 0
    horizon_day: int = 0  # last day that can hold work (exclusive of the horizon instant's day)
    holidays: dict[str, dict[int, str]] = field(default_factory=dict)

    @classmethod
    def build(cls, preset: Preset) -> Calendar:
        cutover = CUTOVER_AT
        month = cutover.month - preset.months
        year = cutover.year + (month - 1) // 12
        month = (month - 1) % 12 + 1
        start = date(year, month, 1)
        horizon = cutover + timedelta(days=preset.horizon_days)
        cal = cls(preset)
        cal.start_day = to_day(start)
        cal.clock = to_secs(cutover)
        cal.horizon = to_secs(horizon)
        cal.clock_day = to_day(cutover.date())
        cal.horizon_day = to_day(horizon.date()) - 1
        cal.holidays = _holidays(start.year - 1, horizon.year + 1)
        return cal

    @property
    def start_date(self) -> date:
        return day_to_date(self.start_day)

    def holiday_mask(self, entity_index: int, days: np.ndarray) -> np.ndarray:
        code = ENTITY_CODES[entity_index]
        table = np.array(sorted(self.holidays[code]), dtype=np.int64)
        return np.isin(days, table)

    def working_days(self, entity_index: int, first: int, last: int) -> np.ndarray:
        days = np.arange(first, last + 1, dtype=np.int64)
        keep = (weekday(days) < 5) & ~self.holiday_mask(entity_index, days)
        return days[keep]

    def nth_working_day_after_month(self, entity_index: int, month_end_day: int, n: int) -> int:
        """The n-th working day (weekdays without the entity's holidays) after a month end."""
        days = self.working_days(entity_index, month_end_day + 1, month_end_day + 31)
        return int(days[n - 1])


def _holidays(first_year: int, last_year: int) -> dict[str, dict[int, str]]:
    import holidays as holidays_lib

    out: dict[str, dict[int, str]] = {}
    for code, country in (("US", "US"), ("UK", "GB"), ("DE", "DE")):
        table = holidays_lib.country_holidays(country, years=range(first_year, last_year + 1))
        out[code] = {to_day(day): str(name) for day, name in sorted(table.items())}
    return out


def iso_secs(secs: int) -> str:
    """Seconds since epoch → `2025-03-04T17:20:00Z`."""
    return datetime.fromtimestamp(int(secs), tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# ---- keyed randomness: draws that are a pure function of (seed, phase, record key) ----------
# The world is generated in blocks of employees; a draw must not depend on which block a record
# falls in, nor on how many records came before it. So every random value is a hash of the
# seed, the phase, the record's own key and the draw's number (splitmix64), not the next value
# of a stream.
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def mix64(values: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser, vectorised: a well-spread uint64 per input uint64."""
    x = np.asarray(values, dtype=np.uint64) + _GOLDEN
    x = (x ^ (x >> np.uint64(30))) * _M1
    x = (x ^ (x >> np.uint64(27))) * _M2
    return x ^ (x >> np.uint64(31))


def record_key(*parts: np.ndarray | int) -> np.ndarray:
    """One uint64 per record from integer parts (employee, day, assignment …), order-sensitive."""
    arrays = np.broadcast_arrays(*[np.asarray(p, dtype=np.int64) for p in parts])
    out = np.zeros(arrays[0].shape, dtype=np.uint64)
    for part in arrays:
        out = mix64(out ^ part.astype(np.int64).view(np.uint64))
    return out


class Keyed:
    """Random draws for a set of records, each a function of (seed, phase, record key, draw number)."""

    def __init__(self, seed: int, phase: str, keys: np.ndarray):
        salt = mix64(np.array([(seed & 0xFFFFFFFF) << 32 | zlib.crc32(phase.encode())], dtype=np.uint64))
        self.base = mix64(np.asarray(keys, dtype=np.uint64) ^ salt[0])
        self.draws = 0

    @property
    def size(self) -> int:
        return int(self.base.size)

    def random(self) -> np.ndarray:
        """Uniform [0, 1) per record."""
        self.draws += 1
        bits = mix64(self.base ^ mix64(np.array([self.draws], dtype=np.uint64))[0])
        return (bits >> np.uint64(11)).astype(np.float64) * (1.0 / 2**53)

    def integers(self, low, high) -> np.ndarray:
        """Integers in [low, high) (bounds may be arrays)."""
        low = np.asarray(low, dtype=np.int64)
        span = np.asarray(high, dtype=np.int64) - low
        return low + np.minimum((self.random() * span).astype(np.int64), np.maximum(span - 1, 0))

    def uniform(self, low: float, high: float) -> np.ndarray:
        return low + self.random() * (high - low)

    def normal(self, mean: float, sd: float) -> np.ndarray:
        """Box–Muller from two keyed uniforms."""
        u1, u2 = self.random(), self.random()
        return mean + sd * np.sqrt(-2.0 * np.log1p(-u1)) * np.cos(2 * np.pi * u2)

    def lognormal(self, mean: float, sd: float) -> np.ndarray:
        return np.exp(self.normal(mean, sd))

    def choice(self, options, p: list[float] | None = None) -> np.ndarray:
        """One of `options` (an int n means range(n)) per record, uniformly or with weights `p`."""
        values = np.arange(options) if isinstance(options, int) else np.asarray(options)
        u = self.random()
        if p is None:
            pos = (u * values.size).astype(np.int64)
        else:
            pos = np.searchsorted(np.cumsum(p) / np.sum(p), u, side="right")
        return values[np.minimum(pos, values.size - 1)]
