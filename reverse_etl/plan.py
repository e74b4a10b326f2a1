"""Plan: read rpt_billable_lines from the published warehouse and diff it against the ledger.

The mart is the desired state; the ledger says what the ERP holds from us. The diff yields one
operation per line that must change (create, update, delete), and says why every other line is
left alone (held, skipped), so `make sync DRY_RUN=1` can print the whole picture.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import duckdb

from billable.duckdb_config import duckdb_config
from reverse_etl.records import Line
from reverse_etl.states import LineState, Operation

MART = "marts.rpt_billable_lines"
# A line whose request is unanswered belongs to that request (resent first, same requestid).
UNANSWERED = (LineState.PLANNED, LineState.SENT, LineState.DEAD_LETTER)


class PlanInputError(RuntimeError):
    """The warehouse cannot be read as the plan's input; the message says why and what to do."""


@dataclass
class Op:
    """One change to send: the line, the operation and the ERP object to send."""

    line_key: str
    realm_id: str
    operation: str  # Operation: create | update | delete
    entity: str  # TimeActivity | Invoice
    payload: dict
    content_hash: str | None
    row: dict  # the mart row (or the ledger's facts for deletes of vanished lines)
    reason: str = ""


@dataclass
class Plan:
    ops: list[Op] = field(default_factory=list)
    held: list[tuple[dict, str]] = field(default_factory=list)
    skipped: list[tuple[str, str, str]] = field(default_factory=list)  # (line_key, realm, reason)
    invoiced_changed: list[tuple[str, str]] = field(default_factory=list)  # lines changed after billing
    mark_invoiced: list[str] = field(default_factory=list)  # ledger lines the ERP invoiced meanwhile
    mark_gone: list[str] = field(default_factory=list)  # rejected creates whose line is no longer wanted
    # Lines the ERP holds from us that left the mart without a stated reason: never deleted for
    # that (a missing row is not a reason: a transient gap upstream looks the same), reported.
    vanished: list[Line] = field(default_factory=list)
    lines_in_plan: int = 0

    def count(self, operation: str) -> int:
        return sum(1 for op in self.ops if op.operation == operation)


def read_lines(warehouse: Path, ours: set[str] | None = None) -> tuple[list[dict], str | None]:
    """The mart's rows (short-lived read-only connection) and the build's run id.

    Lines the ERP invoiced that this integration never pushed (the ERP's history: most of the
    mart) come back with their key and realm only: the plan just counts them.

    The engine (BILLABLE_ENGINE) says where the published mart is: the DuckDB file `warehouse`
    (the default); PostgreSQL's published `marts` schema through the readers' connection in a
    read-only session; Spark's published Parquet snapshot (`data/spark/published/`, beside
    `warehouse`) read with DuckDB.
    """
    from billable.engine import EngineError, engine_name

    try:
        engine = engine_name()
    except EngineError as err:
        raise PlanInputError(str(err)) from err
    if engine == "postgres":
        return _read_lines_postgres(sorted(ours or ()))
    if engine == "spark":
        return _read_lines_spark(warehouse.parent, ours)
    if not warehouse.is_file():
        raise PlanInputError(f"no published warehouse at {warehouse}; run `make transform` first")
    try:
        with duckdb.connect(str(warehouse), read_only=True, config=duckdb_config()) as conn:
            rows, history = _read_mart(conn, str(warehouse), ours)
    except duckdb.Error as err:
        raise PlanInputError(f"cannot read {MART} from {warehouse}: {err}") from err
    rows += [{"line_key": key, "realm_id": realm, "line_status": "invoiced"} for key, realm in history]
    run_id = None
    metadata = warehouse.with_suffix(".json")
    if metadata.is_file():
        run_id = json.loads(metadata.read_text()).get("run_id")
    return rows, run_id


def _read_mart(conn: duckdb.DuckDBPyConnection, where: str, ours: set[str] | None) -> tuple[list[dict], list]:
    """The mart's rows on a DuckDB connection (the published file, or views over Spark's Parquet)."""
    import pyarrow as pa

    found = conn.execute(
        "select count(*) from information_schema.tables "
        "where table_schema = 'marts' and table_name = 'rpt_billable_lines'"
    ).fetchall()[0][0]
    if not found:
        raise PlanInputError(
            f"{where} has no {MART}: it was built before the reverse ETL existed; run `make transform`"
        )
    conn.register("ledger_keys", pa.table({"line_key": pa.array(sorted(ours or ()), pa.string())}))
    cursor = conn.execute(
        f"select * from {MART} where line_status <> 'invoiced' "
        "or line_key in (select line_key from ledger_keys) order by line_key"
    )
    names = [d[0] for d in cursor.description]
    rows = [dict(zip(names, values, strict=True)) for values in cursor.fetchall()]
    history = conn.execute(
        f"select line_key, realm_id from {MART} where line_status = 'invoiced' "
        "and line_key not in (select line_key from ledger_keys) order by line_key"
    ).fetchall()
    return rows, history


def _read_lines_spark(data_dir: Path, ours: set[str] | None) -> tuple[list[dict], str | None]:
    """read_lines on Spark: the mart in the published Parquet snapshot, read with DuckDB (no JVM):
    `data/spark/published/CURRENT` names the run, its `marts/rpt_billable_lines/` holds the files."""
    root = data_dir / "spark" / "published"
    pointer = root / "CURRENT"
    run_id = pointer.read_text(encoding="utf-8").strip() if pointer.is_file() else ""
    if not run_id:
        raise PlanInputError(f"no published Spark warehouse under {root}; run `make transform` first")
    folder = root / run_id / "marts" / "rpt_billable_lines"
    try:
        with duckdb.connect() as conn:
            conn.execute("create schema marts")
            if any(folder.glob("*.parquet")):
                files = str(folder / "*.parquet").replace("'", "''")
                conn.execute(f"create view {MART} as select * from read_parquet('{files}')")
            rows, history = _read_mart(conn, str(root / run_id), ours)
    except duckdb.Error as err:
        raise PlanInputError(f"cannot read {MART} from {folder}: {err}") from err
    rows += [{"line_key": key, "realm_id": realm, "line_status": "invoiced"} for key, realm in history]
    return rows, run_id


def _read_lines_postgres(ours: list[str]) -> tuple[list[dict], str | None]:
    """read_lines on PostgreSQL: one read-only transaction (one snapshot of the mart and of what
    was published), the run id from ops.publications, else the latest passed ops.transform_runs."""
    import psycopg2

    from billable.engine import EngineError, postgres_reader_settings

    try:
        settings = postgres_reader_settings()
    except EngineError as err:
        raise PlanInputError(str(err)) from err
    where = settings.describe()
    try:
        connection = psycopg2.connect(connect_timeout=30, **settings.connect_kwargs())
    except psycopg2.Error as err:
        raise PlanInputError(f"cannot connect to {where}: {' '.join(str(err).split())}") from err
    try:
        connection.set_session(readonly=True, isolation_level="REPEATABLE READ")
        with connection, connection.cursor() as cursor:
            cursor.execute(
                "select to_regclass(%s) is not null, to_regclass('ops.publications') is not null,"
                " to_regclass('ops.transform_runs') is not null",
                [MART],
            )
            found, has_publications, has_runs = cursor.fetchone() or (False, False, False)
            if not found:
                raise PlanInputError(
                    f"{where} has no published {MART}: run `make transform` (BILLABLE_ENGINE=postgres)"
                )
            cursor.execute(
                f"select * from {MART} where line_status <> 'invoiced' or line_key = any(%s::text[])"
                ' order by line_key collate "C"',
                [ours],
            )
            names = [d[0] for d in cursor.description or ()]
            rows = [dict(zip(names, values, strict=True)) for values in cursor.fetchall()]
            cursor.execute(
                f"select line_key, realm_id from {MART} where line_status = 'invoiced'"
                ' and not (line_key = any(%s::text[])) order by line_key collate "C"',
                [ours],
            )
            history = cursor.fetchall()
            run_id = None
            if has_publications:
                cursor.execute("select run_id from ops.publications order by published_at desc limit 1")
                run_id = cursor.fetchone()
            elif has_runs:
                cursor.execute(
                    "select run_id from ops.transform_runs where status = 'passed'"
                    " order by finished_at desc nulls last limit 1"
                )
                run_id = cursor.fetchone()
    except psycopg2.Error as err:
        raise PlanInputError(f"cannot read {MART} from {where}: {' '.join(str(err).split())}") from err
    finally:
        connection.close()
    rows += [{"line_key": key, "realm_id": realm, "line_status": "invoiced"} for key, realm in history]
    return rows, None if run_id is None or run_id[0] is None else str(run_id[0])


def payload_for(row: dict) -> dict:
    """The QuickBooks object a mart row becomes (without Id and SyncToken)."""
    customer = {"value": str(row["erp_customer_id"]), "name": row.get("erp_customer_name") or ""}
    item = {"value": str(row["erp_item_id"]), "name": row.get("erp_item_name") or ""}
    if row["line_kind"] == "time":
        return {
            "TxnDate": row["txn_date"].isoformat(),
            "NameOf": "Employee",
            "EmployeeRef": {"value": str(row["erp_employee_id"]), "name": row.get("erp_employee_name") or ""},
            "CustomerRef": customer,
            "ItemRef": item,
            "BillableStatus": "Billable",
            "HourlyRate": _number(row["rate"]),
            "Hours": int(row["hours_whole"]),
            "Minutes": int(row["minutes"]),
            "Description": row["description"],
        }
    amount = _number(row["amount"])
    return {
        "CustomerRef": customer,
        "TxnDate": row["txn_date"].isoformat(),
        "PrivateNote": row["private_note"],
        "Line": [
            {
                "Amount": amount,
                "DetailType": "SalesItemLineDetail",
                "Description": row["description"],
                "SalesItemLineDetail": {
                    "ItemRef": item,
                    "Qty": 1,
                    "UnitPrice": amount,
                    "ServiceDate": row["txn_date"].isoformat(),
                },
            }
        ],
    }


def _number(value: Decimal | float | int) -> float | int:
    """A JSON number with no more digits than the decimal has (rates have at most 4 decimals)."""
    decimal = Decimal(value).normalize()
    return int(decimal) if decimal == decimal.to_integral_value() else float(decimal)


def diff(rows: list[dict], ledger: dict[str, Line], retry_rejected: bool) -> Plan:
    """What to send so the ERP holds exactly the ready lines (never touching invoiced ones)."""
    plan = Plan(lines_in_plan=len(rows))
    seen: set[str] = set()
    for row in rows:
        key = row["line_key"]
        seen.add(key)
        line = ledger.get(key)
        status = row["line_status"]
        ours = line is not None and line.state != LineState.DELETED
        realm = row["realm_id"] or ""
        if line is not None and line.state in UNANSWERED:
            plan.skipped.append((key, realm, "a request from an earlier run is still unanswered"))
            continue
        if line is not None and line.state == LineState.INVOICED:
            if line.content_hash != row["content_hash"]:
                plan.invoiced_changed.append((key, row["realm_id"]))
            continue
        if status == "invoiced":
            if line is not None and ours and line.state == LineState.ACKNOWLEDGED:
                plan.mark_invoiced.append(key)
                if line.content_hash != row["content_hash"]:
                    plan.invoiced_changed.append((key, row["realm_id"]))
            elif not ours:
                plan.skipped.append((key, realm, "invoiced in the ERP before this integration"))
            continue
        if not ours:
            if status == "ready" and row["is_in_erp"]:
                plan.skipped.append(
                    (key, realm, f"already in the ERP as {row['erp_record_key']}, not pushed by this sync")
                )
            elif status == "ready":
                plan.ops.append(_op(row, Operation.CREATE))
            elif status == "held":
                plan.held.append((row, row["status_reason"]))
            continue
        assert line is not None  # ours
        # The ledger has the line: acknowledged (the ERP holds it) or rejected.
        if line.state == LineState.REJECTED:
            if status != "ready":
                if line.erp_id is None:
                    plan.mark_gone.append(key)  # never reached the ERP: nothing to undo
                elif status == "withdrawn":
                    plan.ops.append(_delete(line, row, "withdrawn: " + (row["status_reason"] or "")))
                continue
            if retry_rejected or line.rejected_hash != row["content_hash"]:
                operation = Operation.UPDATE if line.erp_id else Operation.CREATE
                plan.ops.append(_op(row, operation, line))
            else:
                plan.skipped.append(
                    (key, realm, f"rejected by the ERP ({line.error_code}), unchanged since: quarantined")
                )
            continue
        # acknowledged
        if status == "withdrawn":
            if line.erp_entity == "Invoice":
                plan.skipped.append((key, realm, "withdrawn draft invoice: delete it in the ERP by hand"))
            else:
                plan.ops.append(_delete(line, row, row["status_reason"] or "withdrawn"))
        elif status == "ready" and line.content_hash != row["content_hash"]:
            if line.erp_entity == "Invoice":
                plan.skipped.append(
                    (key, realm, "milestone changed after its draft invoice was pushed: change it by hand")
                )
            else:
                plan.ops.append(_op(row, Operation.UPDATE, line))
        elif status == "held" and line.content_hash != row["content_hash"]:
            plan.held.append((row, "changed but held: " + (row["status_reason"] or "")))
    for key, line in ledger.items():
        if key in seen or line.state != LineState.ACKNOWLEDGED:
            continue
        if line.erp_entity == "TimeActivity":
            # Deletes are explicit: the mart must say why (a `withdrawn` row with its reason, e.g.
            # the entry confirmed deleted in the time tool). A key that is just missing is left in
            # the ERP and reported.
            plan.vanished.append(line)
        else:
            plan.skipped.append((key, line.realm_id, "milestone no longer completed: draft invoice stays"))
    return plan


def _op(row: dict, operation: Operation, line: Line | None = None) -> Op:
    payload = payload_for(row)
    if operation == Operation.UPDATE:
        assert line is not None  # an update is of a line the ledger holds
        payload = {**payload, "Id": line.erp_id, "SyncToken": line.sync_token}
    key, realm, entity = row["line_key"], row["realm_id"], row["erp_entity"]
    return Op(key, realm, operation, entity, payload, row["content_hash"], row)


def ledger_facts(line: Line) -> dict:
    """What the ledger knows of a line's content (what the ERP holds from us), as a mart-like row."""
    return {
        "line_key": line.line_key,
        "line_kind": line.line_kind,
        "realm_id": line.realm_id,
        "txn_date": line.txn_date,
        "hours": line.hours,
        "amount": line.amount,
        "currency_code": line.currency_code,
    }


def _delete(line: Line, row: dict | None, reason: str) -> Op:
    # The money and hours a delete removes are what the ERP holds (the ledger's), not the mart's.
    facts = {**(row or {}), **{k: v for k, v in ledger_facts(line).items() if v is not None}}
    payload = {"Id": line.erp_id, "SyncToken": line.sync_token}
    return Op(line.line_key, line.realm_id, Operation.DELETE, line.erp_entity, payload, None, facts, reason)


def summarise(plan: Plan, sample: int = 3) -> str:
    """The plan by realm: operations with money (by currency) and hours, held and skipped, a sample."""
    out = [f"plan: {plan.lines_in_plan:,} lines in rpt_billable_lines"]
    by_realm: dict[str, dict] = defaultdict(lambda: defaultdict(list))
    by_reason = {op.line_key: op.reason for op in plan.ops if op.operation == "delete"}
    for op in plan.ops:
        by_realm[op.realm_id][op.operation].append(op.row)
    for row, reason in plan.held:
        by_realm[row["realm_id"] or "(no realm)"]["held"].append({**row, "_reason": reason})
    for line in plan.vanished:
        by_realm[line.realm_id]["vanished"].append(
            {
                **ledger_facts(line),
                "_reason": "in the ERP from us, missing from the mart with no reason: left alone",
            }
        )
    skipped_reasons: dict[str, Counter] = defaultdict(Counter)
    for _key, realm, reason in plan.skipped:
        skipped_reasons[realm or "(no realm)"][_generic(reason)] += 1
    realms = sorted(set(by_realm) | set(skipped_reasons))
    if not realms:
        out.append("  nothing to do")
    for realm in realms:
        out.append(f"  realm {realm}:")
        for kind in ("create", "update", "delete", "held", "vanished"):
            group = by_realm[realm].get(kind, [])
            if not group:
                continue
            money: dict[str, Decimal] = defaultdict(Decimal)
            hours = Decimal(0)
            for row in group:
                if row.get("amount") is not None:
                    money[row.get("currency_code") or "?"] += Decimal(row["amount"])
                if row.get("hours") is not None:
                    hours += Decimal(row["hours"])
            totals = ", ".join(f"{amount:,.2f} {currency}" for currency, amount in sorted(money.items()))
            out.append(f"    {kind:<8} {len(group):>6,} lines  {hours:>10,.2f} h  {totals}")
            for row in group[:sample]:
                reason = f"  ({row['_reason']})" if kind in ("held", "vanished") else ""
                if kind == "delete":
                    reason = f"  ({by_reason.get(row['line_key'], '')})"
                out.append(
                    f"      e.g. {row['line_key']} {row.get('txn_date') or ''} "
                    f"{row.get('amount') or ''} {row.get('currency_code') or ''}{reason}"
                )
        for reason, count in skipped_reasons[realm].most_common():
            out.append(f"    skipped {count:>7,} lines  {reason}")
    if plan.vanished:
        hours = sum((Decimal(line.hours) for line in plan.vanished if line.hours), Decimal(0))
        out.append(
            f"  {len(plan.vanished):,} line(s) ({hours:,.2f} h) the ERP holds from this sync are missing "
            "from the mart with no stated reason: NOT deleted (a deletion needs a withdrawn line with "
            "its reason); check the time tool and the last ingest"
        )
    if plan.invoiced_changed:
        out.append(
            f"  {len(plan.invoiced_changed):,} line(s) changed after the ERP invoiced them: never touched "
            "(CHANGED_AFTER_BILLING, for finance)"
        )
    return "\n".join(out)


def _generic(reason: str) -> str:
    """A skip reason without its per-line detail, for counting."""
    if reason.startswith("already in the ERP"):
        return "already in the ERP, not pushed by this sync"
    if reason.startswith("rejected by the ERP"):
        return "rejected by the ERP and unchanged: quarantined (RETRY_REJECTED=1 retries)"
    return reason
