"""The payroll drop's CSV contract and the reading of one snapshot file into typed rows + quarantine.

A file is `<kind>_<YYYY-MM-DD>.csv`: a full snapshot of one entity as of the end of that day,
header row, comma separated, UTF-8, dates `YYYY-MM-DD`. Rows land typed (dates as dates, hours
and money as doubles) keyed by (snapshot_date, natural key). A row that cannot land as it is
(wrong field count, a number or date that does not parse, a missing key or required value, a key
repeated in the file) is quarantined with its raw line and the reason, never coerced.

A file is also checked as a whole against the snapshot before it (`shrinkage`): every kind is a
full snapshot, so one that lost most of the previous snapshot's rows or people is taken for a
truncated export rather than news; and a file that does not end with a line end was cut mid-line.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from ingestion.records import QUARANTINE_TABLE

SOURCE = "hr_drop"
FILES_TABLE = "files"
# A snapshot must keep at least this share of the previous snapshot's rows and of its people.
DEFAULT_MIN_SHARE = 0.8
FILE_NAME = re.compile(r"^(?P<kind>[a-z_]+?)_(?P<snapshot>\d{4}-\d{2}-\d{2})\.csv$")
DATE_FORMAT = "%Y-%m-%d"


@dataclass(frozen=True)
class SnapshotKind:
    """One kind of snapshot file: its table, columns in order, natural key and typed columns."""

    table: str
    columns: tuple[str, ...]
    key: tuple[str, ...]
    numbers: tuple[str, ...] = ()
    dates: tuple[str, ...] = ()
    required: tuple[str, ...] = ()  # non-key columns that must have a value (hours, money)
    people: str = "employee_id"  # whose count a snapshot must keep (`shrinkage`)
    string_columns: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        typed = set(self.numbers) | set(self.dates)
        object.__setattr__(self, "string_columns", tuple(c for c in self.columns if c not in typed))

    @property
    def primary_key(self) -> tuple[str, ...]:
        return ("snapshot_date", *self.key)


KINDS = {
    kind.table: kind
    for kind in (
        SnapshotKind(
            "employees",
            (
                "employee_id",
                "email",
                "first_name",
                "last_name",
                "grade",
                "practice",
                "region",
                "legal_entity",
                "cost_centre",
                "hire_date",
                "termination_date",
                "weekly_standard_hours",
                "manager_id",
            ),
            ("employee_id",),
            numbers=("weekly_standard_hours",),
            dates=("hire_date", "termination_date"),
        ),
        SnapshotKind(
            "cost_rates",
            ("employee_id", "effective_from", "hourly_cost", "currency"),
            ("employee_id", "effective_from"),
            numbers=("hourly_cost",),
            dates=("effective_from",),
            required=("hourly_cost", "currency"),
        ),
        SnapshotKind(
            "time_off",
            ("employee_id", "date", "hours", "type"),
            ("employee_id", "date"),
            numbers=("hours",),
            dates=("date",),
            required=("hours",),
        ),
        SnapshotKind(
            "holidays",
            ("legal_entity", "date", "name"),
            ("legal_entity", "date"),
            dates=("date",),
            people="legal_entity",
        ),
    )
}


class UnexpectedDropFile(Exception):
    """A file in the drop folder that breaks the contract as a whole (name, encoding, header)."""


class RefusedDropFile(UnexpectedDropFile):
    """A readable file refused as a whole (truncated: shrunk, or cut mid-line); the rest of the drop loads."""


@dataclass(frozen=True)
class SnapshotSize:
    """What a snapshot holds: its rows (that land) and its distinct people (legal entities for holidays)."""

    file_name: str
    snapshot_date: date
    rows: int
    people: int


@dataclass
class Snapshot:
    """One file read: its typed rows, its quarantined rows and its `files` row."""

    kind: SnapshotKind
    rows: pa.Table
    quarantined: list[dict]
    file_row: dict
    cut: str = ""  # why the file looks cut mid-line ('' when it ends with a line end)

    @property
    def size(self) -> SnapshotSize:
        people = pc.count_distinct(self.rows[self.kind.people]).as_py() if self.rows.num_rows else 0
        file_name, snapshot_date = self.file_row["file_name"], self.file_row["snapshot_date"]
        return SnapshotSize(file_name, snapshot_date, self.rows.num_rows, people)


def identify(file_name: str) -> tuple[SnapshotKind, date]:
    """The kind and snapshot date a file name announces, or UnexpectedDropFile."""
    match = FILE_NAME.match(file_name)
    kind = KINDS.get(match["kind"]) if match else None
    if match is None or kind is None:
        raise UnexpectedDropFile(
            f"HR drop file {file_name!r} is not named <kind>_<YYYY-MM-DD>.csv with kind one of "
            f"{', '.join(KINDS)}; move it out of the drop folder (or rename it) and re-run"
        )
    try:
        snapshot = date.fromisoformat(match["snapshot"])
    except ValueError:
        raise UnexpectedDropFile(f"HR drop file {file_name!r}: {match['snapshot']!r} is not a date") from None
    return kind, snapshot


def read_snapshot(file_name: str, content: bytes, modified_at: datetime | None) -> Snapshot:
    """Parse one drop file; raises UnexpectedDropFile when the file as a whole cannot be read."""
    kind, snapshot = identify(file_name)
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise UnexpectedDropFile(f"HR drop file {file_name!r} is not UTF-8 ({err})") from None
    lines = text.splitlines(keepends=True)
    reader = csv.reader(io.StringIO(text))
    header = [name.strip() for name in next(reader, [])]
    check_header(file_name, kind, header)

    data_rows = 0
    fields: list[list[str]] = []
    line_numbers: list[int] = []
    raws: list[str] = []
    bad: list[tuple[int, str, str]] = []  # (line number, raw line, reason)
    previous = reader.line_num
    for row in reader:
        raw = "".join(lines[previous : reader.line_num]).rstrip("\r\n")
        line_number = previous + 1
        previous = reader.line_num
        if not row or (len(row) == 1 and not row[0].strip()):
            continue  # a blank line carries no row
        data_rows += 1
        if len(row) != len(header):
            bad.append((line_number, raw, f"has {len(row)} fields, expected {len(header)}"))
            continue
        fields.append(row)
        line_numbers.append(line_number)
        raws.append(raw)

    frame = pl.DataFrame(fields, schema=dict.fromkeys(header, pl.String), orient="row")
    # An empty field is a null; nothing else is touched (a value that does not parse is quarantined).
    frame = frame.select(kind.columns).with_columns(pl.col(kind.columns).replace("", None))
    typed = frame.with_columns(
        *(pl.col(name).cast(pl.Float64, strict=False) for name in kind.numbers),
        *(pl.col(name).str.strptime(pl.Date, DATE_FORMAT, strict=False) for name in kind.dates),
    )
    reasons = row_problems(kind, frame, typed)
    good = [index for index, reason in enumerate(reasons) if not reason]
    bad.extend((line_numbers[i], raws[i], reason) for i, reason in enumerate(reasons) if reason)

    rows = typed[good].with_columns(
        pl.lit(snapshot).alias("snapshot_date"), pl.lit(file_name).alias("file_name")
    )
    arrow = rows.select("snapshot_date", *kind.columns, "file_name").to_arrow()
    arrow = arrow.cast(
        pa.schema([f.with_nullable(False) if f.name in kind.primary_key else f for f in arrow.schema])
    )
    quarantined = [
        quarantine_row(kind, file_name, header, number, raw, reason) for number, raw, reason in bad
    ]
    file_row = {
        "file_name": file_name,
        "sha256": hashlib.sha256(content).hexdigest(),
        "kind": kind.table,
        "snapshot_date": snapshot,
        "rows": data_rows,
        "quarantined_rows": len(bad),
        "size_bytes": len(content),
        "modified_at": modified_at,
        "loaded_at": datetime.now(UTC),
    }
    return Snapshot(kind, arrow, quarantined, file_row, cut_mid_line(text, lines, len(header)))


def cut_mid_line(text: str, lines: list[str], fields: int) -> str:
    """Why the file looks cut mid-line ('' if it ends with a line end).

    Every line of an export ends with a line end, the last one too. A file without one was cut
    while being written or copied: its last line may still have every field, with the last value
    cut short ("GB" for "GBP", 12.5 for 125.14), so it cannot be trusted as a row.
    """
    if len(lines) < 2 or text.endswith(("\n", "\r")):
        return ""  # a header alone is whole: `check_header` accepted every column of it
    last = lines[-1]
    count = len(next(csv.reader([last]), []))
    shown = last if len(last) <= 80 else last[:77] + "..."
    return (
        f"ends mid-line: its last line {shown!r} ({count} of {fields} fields) has no line end, so the "
        "file was cut short"
    )


def shrinkage(
    kind: SnapshotKind, current: SnapshotSize, previous: SnapshotSize | None, min_share: float
) -> str:
    """Why `current` looks truncated next to the `previous` snapshot of its kind ('' when it does not).

    Every kind is a full snapshot and the warehouse reads each employee's (each legal entity's)
    history from their latest one, so a snapshot that lost most of the previous one's rows or
    people would silently take their rates, time off or holidays away.
    """
    if previous is None:
        return ""
    who = "legal entities" if kind.people == "legal_entity" else "employees"
    short = [
        what
        for what, now, before in (
            ("rows", current.rows, previous.rows),
            (who, current.people, previous.people),
        )
        if before and now < min_share * before
    ]
    if not short:
        return ""
    header_only = " (header only)" if current.rows == 0 else ""
    return (
        f"{current.rows} rows for {current.people} {who}{header_only}, but the previous {kind.table} "
        f"snapshot {previous.file_name} had {previous.rows} rows for {previous.people} {who}: fewer "
        f"{' and '.join(short)} than the {min_share:.0%} a snapshot must keep"
    )


def check_header(file_name: str, kind: SnapshotKind, header: list[str]) -> None:
    """The header must name exactly the kind's columns (in any order), each once."""
    expected = list(kind.columns)
    if sorted(header) == sorted(expected):
        return
    missing = [name for name in expected if name not in header]
    unexpected = [name for name in header if name not in expected]
    repeated = sorted({name for name in header if header.count(name) > 1})
    details = "; ".join(
        part
        for part in (
            f"missing {missing}" if missing else "",
            f"unexpected {unexpected}" if unexpected else "",
            f"repeated {repeated}" if repeated else "",
        )
        if part
    )
    raise UnexpectedDropFile(
        f"HR drop file {file_name!r} has an unexpected header {header} ({details}); a {kind.table} file "
        f"must have the columns {expected}. Nothing from the HR drop was loaded: fix or remove the "
        "file and re-run"
    )


def row_problems(kind: SnapshotKind, raw: pl.DataFrame, typed: pl.DataFrame) -> list[str]:
    """Per row, why it cannot land ('' when it can): missing keys, unparsable values, repeated keys."""
    reasons: list[list[str]] = [[] for _ in range(raw.height)]
    for name in (*kind.key, *(c for c in kind.required if c not in kind.key)):
        for index in raw[name].is_null().arg_true().to_list():
            reasons[index].append(f"missing {name}")
    for name, what in (
        *((n, "a number") for n in kind.numbers),
        *((n, "a YYYY-MM-DD date") for n in kind.dates),
    ):
        parsed = typed[name]
        failed = parsed.is_null() if name in kind.dates else (parsed.is_null() | ~parsed.is_finite())
        for index in (raw[name].is_not_null() & failed).arg_true().to_list():
            reasons[index].append(f"{name} {raw[name][index]!r} is not {what}")
    # A key repeated within one snapshot: the first clean row lands, the later ones are quarantined.
    seen: set[tuple] = set()
    for index, key in enumerate(typed.select(kind.key).iter_rows()):
        if reasons[index]:
            continue
        if key in seen:
            reasons[index].append(f"repeats the key {dict(zip(kind.key, map(str, key), strict=True))}")
        seen.add(key)
    return ["; ".join(reason) for reason in reasons]


def quarantine_row(
    kind: SnapshotKind, file_name: str, header: list[str], line: int, raw: str, reason: str
) -> dict:
    """A quarantine row in the shape of `TableSpec.quarantine_row`, the raw CSV line as payload."""
    values = next(csv.reader([raw]), [])
    by_name = dict(zip(header, values, strict=False))
    return {
        "quarantine_id": hashlib.sha256(f"{kind.table}|{file_name}|{line}|{raw}".encode()).hexdigest()[:32],
        "source": SOURCE,
        "table_name": kind.table,
        "record_key": "|".join(by_name.get(name, "") or "" for name in kind.key),
        "reason": reason,
        "payload": raw,
        "quarantined_at": datetime.now(UTC),
        "context__file_name": file_name,
        "context__line": str(line),
    }


__all__ = [
    "DEFAULT_MIN_SHARE",
    "FILES_TABLE",
    "KINDS",
    "QUARANTINE_TABLE",
    "RefusedDropFile",
    "Snapshot",
    "SnapshotSize",
    "UnexpectedDropFile",
    "read_snapshot",
    "shrinkage",
]
