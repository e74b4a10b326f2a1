"""`make sync [DRY_RUN=1] [RETRY_REJECTED=1]`: push approved billable lines to the ERP, exactly once.

    python -m reverse_etl [--warehouse data/warehouse.duckdb] [--ledger data/ledger.sqlite]
        [--dry-run] [--retry-rejected] [--wait SECONDS] [--max-rpm N] [--concurrency N]
        [--max-batches N] [--batch-size N] [--singles]

Reads marts.rpt_billable_lines from the published warehouse, diffs it against the ledger,
prints the plan, then (unless --dry-run) resends any batch an earlier run left unanswered and
sends the plan's creates, updates and deletes in batches of at most 30 per realm.

Exit codes: 0 every request answered (business rejections are reported, not failures);
1 a transport failure outlived the retries in some realm (those lines are dead letters, resent
next run); 2 usage or configuration (no warehouse, no ERP settings, a ledger that is not usable or
refuses a state change); 75 another sync runs.
"""

from __future__ import annotations

import argparse
import secrets
import sqlite3
import sys
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from billable.run_lock import EX_TEMPFAIL, LockHeld, run_lock
from ingestion.auth import AuthError
from reverse_etl.client import ConfigError, QuickBooksClient, Settings, load_settings
from reverse_etl.ledger import IllegalTransition, Ledger, LedgerError, export_snapshot, now
from reverse_etl.plan import Plan, PlanInputError, diff, read_lines, summarise
from reverse_etl.reconcile import Reconciliation, reconcile
from reverse_etl.records import Line, RunCounters, RunResult
from reverse_etl.send import BATCH_LIMIT, Sender
from reverse_etl.states import LineState, RunStatus

EX_OK, EX_TRANSPORT, EX_USAGE = 0, 1, 2
FOLLOW_UP_ROUNDS = 3


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m reverse_etl",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add = parser.add_argument
    add("--warehouse", type=Path, default=Path("data") / "warehouse.duckdb")
    add("--ledger", type=Path, help="the ledger (default: ledger.sqlite beside the warehouse)")
    add("--dry-run", action="store_true", help="print the plan, change nothing")
    add("--retry-rejected", action="store_true", help="resend lines the ERP rejected, even unchanged")
    add("--wait", type=float, default=0, help="wait this long for a running sync (default: exit 75)")
    add("--max-rpm", type=float, help="requests per minute per realm (default 450; 0: no pacing)")
    add("--concurrency", type=int, help="concurrent requests per realm (default 4, at most 10)")
    add(
        "--max-batches",
        type=int,
        help="batch requests per realm in any 61 s (default 36; QuickBooks allows 40 a minute; 0: unpaced)",
    )
    add("--batch-size", type=int, default=BATCH_LIMIT, help=f"items per batch (1..{BATCH_LIMIT})")
    add(
        "--singles",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="a realm with more lines than one window of batches sends a share alone, on the request "
        "budget the batches leave (default: batches only)",
    )
    add("--sample", type=int, default=3, help="lines shown per group in the plan")
    args = parser.parse_args(argv)
    if args.concurrency is not None and not 1 <= args.concurrency <= 10:
        parser.error("--concurrency must be 1..10 (QuickBooks allows 10 concurrent requests per company)")
    if not 1 <= args.batch_size <= BATCH_LIMIT:
        parser.error(f"--batch-size must be 1..{BATCH_LIMIT}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    warehouse = args.warehouse.resolve()
    ledger_path = (args.ledger or warehouse.with_name("ledger.sqlite")).resolve()
    settings = None
    try:
        overrides = {
            "max_requests_per_minute": args.max_rpm,
            "concurrency": args.concurrency,
            "max_batches_per_window": args.max_batches,
        }
        settings = load_settings(**{k: v for k, v in overrides.items() if v is not None})
    except ConfigError as err:
        if not args.dry_run:
            print(f"sync: {err}", file=sys.stderr)
            return EX_USAGE
        print(f"sync: the ERP is not configured, so this dry run plans from the ledger alone ({err})")
    try:
        # One sync at a time per ledger: a second one waits (--wait) or exits 75, never interleaves.
        with run_lock(ledger_path.with_suffix(".lock"), args.wait):
            return run(args, warehouse, ledger_path, settings)
    except LockHeld as held:
        print(f"sync: {held}", file=sys.stderr)
        return EX_TEMPFAIL
    except AuthError as err:  # the QuickBooks grant was refused: re-authorise (one line, exit 2)
        print(f"sync: {err}", file=sys.stderr)
        return EX_USAGE
    except LedgerError as err:
        print(f"sync: {err}", file=sys.stderr)
        return EX_USAGE
    except IllegalTransition as err:  # the ledger and this code disagree: stop, change nothing more
        print(
            f"sync: the ledger {ledger_path} refused a state change: {err}; the transaction was rolled "
            "back. Was the ledger edited by hand? Check that line (sqlite3) before re-running",
            file=sys.stderr,
        )
        return EX_USAGE
    except sqlite3.DatabaseError as err:  # the ledger went bad during the run
        print(
            f"sync: {LedgerError(f'the ledger {ledger_path} failed: {err}')}; it was left untouched",
            file=sys.stderr,
        )
        return EX_USAGE


def describe_warehouse(warehouse: Path) -> str:
    """Where the plan was read: the DuckDB file, or the engine's published warehouse."""
    from billable.engine import engine_name, postgres_reader_settings

    engine = engine_name()
    if engine == "postgres":
        return f"the published marts at {postgres_reader_settings().describe()}"
    if engine == "spark":
        return f"the published Spark snapshot under {warehouse.parent / 'spark' / 'published'}"
    return str(warehouse)


def run(args: argparse.Namespace, warehouse: Path, ledger_path: Path, settings: Settings | None) -> int:
    started = time.monotonic()
    ledger = Ledger(ledger_path)  # LedgerError (one line naming the file) if it is not a ledger
    try:
        rows, warehouse_run_id = read_lines(warehouse, set(ledger.lines()))
    except PlanInputError as err:
        ledger.close()
        print(f"sync: {err}", file=sys.stderr)
        return EX_USAGE
    run_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ") + "-" + secrets.token_hex(3)
    snapshot = ledger_path.with_name("ledger.duckdb")
    try:
        ledger.start_run(run_id, args.dry_run, args.retry_rejected, warehouse_run_id)
        build = warehouse_run_id or "unknown"
        source = describe_warehouse(warehouse)
        print(f"sync: run {run_id}, plan from {source} (build {build}), ledger {ledger_path}")
        if ledger.is_new:
            print(
                f"sync: {ledger_path} is a new ledger: what the ERP already holds is read and adopted first"
            )
        sync_run = SyncRun(args, ledger, rows, run_id, started, snapshot)
        if args.dry_run:
            return dry_run(sync_run, settings)
        assert settings is not None  # main stops a non-dry run without ERP settings
        return send(sync_run, settings)
    finally:
        ledger.close()


@dataclass(frozen=True)
class SyncRun:
    """One run: its options, ledger, the mart's rows, its id, start (monotonic) and snapshot path."""

    args: argparse.Namespace
    ledger: Ledger
    rows: list[dict]
    run_id: str
    started: float
    snapshot: Path

    def finish(self, status: RunStatus, counters: RunCounters, message: str, failed: list[str]) -> None:
        """Record how the run ended and publish the ledger's snapshot for the warehouse."""
        duration = time.monotonic() - self.started
        self.ledger.finish_run(self.run_id, RunResult(status, counters, message, duration, tuple(failed)))
        export_snapshot(self.ledger.path, self.snapshot)


def dry_run(sync_run: SyncRun, settings: Settings | None) -> int:
    args, ledger, run_id = sync_run.args, sync_run.ledger, sync_run.run_id
    pending = ledger.pending_batches()
    found = None
    if settings is not None:
        # What the ERP holds decides the plan (the ledger learns it; nothing is sent).
        found = reconcile(ledger, QuickBooksClient(settings), sync_run.rows, run_id, full_every(settings))
        report_reconciliation(found)
    rows, lines = without_failed(sync_run.rows, ledger, found)
    plan = diff(rows, lines, args.retry_rejected)
    if pending:
        count = sum(len(batch.items) for batch in pending)
        print(
            f"sync: {len(pending)} batch(es) ({count} lines) from an earlier run are unanswered; "
            "a run resends them first"
        )
    print(summarise(plan, args.sample))
    counters = plan_counters(plan, found)
    message = f"dry run: {describe(counters)}; nothing sent"
    sync_run.finish(RunStatus.DRY_RUN, counters, message, [])
    print(f"sync: {message}")
    return EX_OK


def full_every(settings: Settings) -> timedelta:
    """How often the ERP is read in full (`full_reconcile_days`; 0: every run)."""
    return timedelta(days=settings.full_reconcile_days)


def send(sync_run: SyncRun, settings: Settings) -> int:
    args, ledger, run_id, started = sync_run.args, sync_run.ledger, sync_run.run_id, sync_run.started
    client = QuickBooksClient(settings)
    sender = Sender(ledger, client, run_id, args.batch_size, singles=args.singles)
    pending = ledger.pending_batches()
    if pending:
        count = sum(len(batch.items) for batch in pending)
        print(
            f"sync: resending {len(pending)} batch(es) ({count} lines) an earlier run left "
            "unanswered (same requestids)"
        )
        sender.send(pending)
    # The ERP is the source of truth: learn what it holds before planning anything.
    found = reconcile(ledger, client, sync_run.rows, run_id, full_every(settings))
    report_reconciliation(found)
    for realm, reason in found.realms_failed.items():
        sender.outcome.realms_failed.setdefault(realm, reason)
    rows, lines = without_failed(sync_run.rows, ledger, found)
    plan = diff(rows, lines, args.retry_rejected)
    apply_local(ledger, plan, run_id)
    print(summarise(plan, args.sample))
    sender.send(sender.persist(plan.ops))
    by_key = {row["line_key"]: row for row in rows}
    for _ in range(FOLLOW_UP_ROUNDS):
        followups = sender.take_followups()
        if not followups:
            break
        print(
            f"sync: {len(followups)} line(s) had a stale SyncToken (5010) or an answer that did not match "
            "what was sent: re-read and resent"
        )
        ops = [op for item in followups if (op := sender.refresh(item, by_key.get(item.item.line_key)))]
        sender.send(sender.persist(ops))
    counts = sender.outcome
    counters = replace(
        plan_counters(plan, found),
        requests_sent=client.requests_sent,
        transport_failures=client.transport_failures,
        lines_acknowledged=counts.acknowledged,
        lines_rejected=counts.rejected,
        lines_deleted=counts.deleted,
        lines_invoiced_untouched=counts.invoiced_untouched + len(plan.invoiced_changed),
        lines_dead_letter=counts.dead_letter,
    )
    failed = sorted(sender.outcome.realms_failed)
    status = RunStatus.FAILED if failed or found.duplicates else RunStatus.SUCCEEDED
    message = (
        f"{counts.acknowledged} acknowledged, {counts.rejected} rejected, {counts.deleted} deleted, "
        f"{counters.lines_invoiced_untouched} invoiced (untouched), {counts.dead_letter} dead letters; "
        f"{client.requests_sent} requests ({client.transport_failures} retried; "
        f"{counts.batches_sent - counts.singles_sent} batches and {counts.singles_sent} single-object "
        "writes answered), "
        f"{client.reads_sent} ERP reads ({found.records_read} records)"
    )
    if counts.replay_mismatch:
        message += f"; {counts.replay_mismatch} answer(s) did not match what was sent (re-read, updated)"
    if plan.vanished:
        message += f"; {len(plan.vanished)} line(s) missing from the mart with no reason, left in the ERP"
    if found.duplicates:
        message += f"; {len(found.duplicates)} line(s) held more than once in the ERP"
    sync_run.finish(status, counters, message, failed)
    print(f"sync: {status}: {message} in {time.monotonic() - started:.1f} s")
    rejected = ledger.count_lines(LineState.REJECTED)
    if rejected:
        print(
            f"sync: {rejected} line(s) stand rejected by the ERP (ERP_REJECTED after the next transform); "
            "fix the cause, or `make sync RETRY_REJECTED=1`"
        )
    if plan.vanished:
        vanished_sample = sorted(line.line_key for line in plan.vanished)[:5]
        print(
            f"sync: WARNING {len(plan.vanished)} line(s) this sync put in the ERP are missing from "
            f"{warehouse_mart()} with no stated reason (e.g. {', '.join(vanished_sample)}); "
            "they were NOT deleted: a deletion needs a withdrawn line with its reason. Check the time tool "
            "and the last ingest",
            file=sys.stderr,
        )
    for realm in failed:
        reason = sender.outcome.realms_failed[realm]
        print(f"sync: realm {realm} FAILED in transport: {reason}", file=sys.stderr)
    return EX_TRANSPORT if failed or found.duplicates else EX_OK


def warehouse_mart() -> str:
    from reverse_etl.plan import MART

    return MART


def report_reconciliation(found: Reconciliation) -> None:
    """What the ERP holds, as found; duplicates loudly (stderr), they need a person."""
    print(f"sync: reconciled with the ERP: {found.describe()}")
    for key, ids in sorted(found.duplicates.items()):
        print(
            f"sync: ERP DUPLICATE: {key} is held {len(ids)} times ({', '.join(ids)}); no copy is added, "
            "the ledger keeps one; delete the extra copies in the ERP",
            file=sys.stderr,
        )
    for realm, reason in sorted(found.realms_failed.items()):
        print(f"sync: realm {realm}: nothing is sent to it in this run: {reason}", file=sys.stderr)


def without_failed(
    rows: list[dict], ledger: Ledger, found: Reconciliation | None
) -> tuple[list[dict], dict[str, Line]]:
    """The plan's input without the realms whose ERP could not be read (never written blind)."""
    lines = ledger.lines()
    if found is None or not found.realms_failed:
        return rows, lines
    down = set(found.realms_failed)
    return (
        [row for row in rows if row.get("realm_id") not in down],
        {key: line for key, line in lines.items() if line.realm_id not in down},
    )


def apply_local(ledger: Ledger, plan: Plan, run_id: str) -> None:
    """Ledger-only changes the diff found: lines the ERP invoiced meanwhile, rejections no longer wanted."""
    stamp = now()
    with ledger.writing(run_id) as writer:
        for key in plan.mark_invoiced:
            writer.mark_invoiced(key, stamp)
        for key in plan.mark_gone:
            writer.drop_rejected(key, stamp)


def plan_counters(plan: Plan, found: Reconciliation | None = None) -> RunCounters:
    return RunCounters(
        lines_in_plan=plan.lines_in_plan,
        creates_planned=plan.count("create"),
        updates_planned=plan.count("update"),
        deletes_planned=plan.count("delete"),
        lines_held=len(plan.held),
        lines_skipped=len(plan.skipped),
        lines_vanished=len(plan.vanished),
        erp_duplicates=len(found.duplicates) if found else 0,
        lines_adopted=len(found.adopted) if found else 0,
        erp_records_read=found.records_read if found else 0,
    )


def describe(counters: RunCounters) -> str:
    return (
        f"{counters.creates_planned} creates, {counters.updates_planned} updates, "
        f"{counters.deletes_planned} deletes, {counters.lines_held} held, "
        f"{counters.lines_skipped} skipped, {counters.lines_vanished} missing from the mart "
        "with no reason (not deleted)"
    )


if __name__ == "__main__":
    sys.exit(main())
