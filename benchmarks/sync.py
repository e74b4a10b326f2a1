"""Reverse-ETL benchmark: push the `demo` world's ready lines to the sandbox ERP, and the floor
QuickBooks' limits put under the first sync of a bigger world.

Three runs on fresh copies of the world and the warehouse (pushing changes the world's ERP): with
the sandbox's real QuickBooks limits (500 requests/min, 10 concurrent and 40 /batch calls a minute
per realm) and the client's defaults (batches only, paced at 36 in any 61 s); the same with
`--singles` (a share of a big realm's lines sent alone on the rest of the 450/min); and with every
limit off and the client unpaced at 10 concurrent per realm. Reported: lines, requests (batches
and singles), 429s, the busiest realm's lines, batches and singles, wall time, lines/s, peak RSS,
and the floor the limits put under the busiest realm next to the wall time.

The floor, for a realm with L lines to create: QuickBooks takes at most 40 batches of 30 a minute
(1,200 lines), so batches alone need L / 1,200 minutes; the other 460 of its 500 requests a
minute can carry one line each, so with singles the floor is L / 1,660 minutes. The client keeps
a margin (36 batches in 61 s, 450 requests a minute: 1,062 + 415 lines a minute) and does not
wait for the first window (its first 36 batches go at once), so `singles_for`' own estimate is
given too. For each warehouse found with a plan to price (BENCH_SYNC_PLAN_WAREHOUSE, the
transform benchmark's `large`, `data/warehouse.duckdb`), the floor of its first sync is computed
from its lines per realm without sending anything.

`BENCH_SYNC_SCENARIOS=limits` runs only the named scenarios (a `large` world's first sync takes
minutes per scenario). Input: the demo world and a warehouse built from it with
rpt_billable_lines, before any sync (its ready lines not yet in the ERP), found in order:
BENCH_SYNC_WORLD / BENCH_SYNC_WAREHOUSE, the transform benchmark's (`data/bench/ingest-demo/world`,
`data/bench/transform-demo/warehouse.duckdb`), `make run`'s (`data/worlds/demo-7`,
`data/warehouse.duckdb`).
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from datetime import datetime
from pathlib import Path

import duckdb
import requests

from billable.sandbox_process import running_sandbox, sandbox_settings

ROOT = Path(__file__).resolve().parent.parent

SCENARIOS: tuple[tuple[str, str, list[str], list[str]], ...] = (
    (
        "limits",
        "sandbox's real limits, client defaults (batches only, 36 / 61 s; 450 requests/min; 4 concurrent)",
        ["--rate-limit"],
        [],
    ),
    (
        "limits-singles",
        "the same with `--singles` (a share alone on the rest of the 450/min)",
        ["--rate-limit"],
        ["--singles"],
    ),
    (
        "unlimited",
        "limits off, client unpaced, 10 concurrent per realm",
        [],
        ["--max-rpm", "0", "--max-batches", "0", "--concurrency", "10"],
    ),
)
BATCH = 30  # lines per batch
ERP_BATCHES_PER_MIN, ERP_REQUESTS_PER_MIN = 40, 500  # QuickBooks, per realm
CLIENT_BATCHES, CLIENT_WINDOW_S, CLIENT_RPM = 36, 61.0, 450.0  # the client's defaults (margins)


def floor_seconds(lines: int, singles: bool) -> float:
    """The limits' floor for one realm's `lines` creates, in steady state (seconds)."""
    per_minute = ERP_BATCHES_PER_MIN * BATCH + (ERP_REQUESTS_PER_MIN - ERP_BATCHES_PER_MIN if singles else 0)
    return 60.0 * lines / per_minute


def client_seconds(lines: int, singles: bool) -> float:
    """The client's own model of the same (its margins, first window at once): singles_for's split."""
    from reverse_etl.send import batch_seconds, singles_for

    alone = singles_for(lines, BATCH, CLIENT_BATCHES, CLIENT_WINDOW_S, CLIENT_RPM) if singles else 0
    batches = -(-(lines - alone) // BATCH)
    single_rate = (CLIENT_RPM - CLIENT_BATCHES * 60 / CLIENT_WINDOW_S) / 60
    return max(batch_seconds(batches, CLIENT_BATCHES, CLIENT_WINDOW_S), alone / single_rate)


def lines_per_realm(warehouse: Path) -> dict[str, int]:
    """The first sync's creates per realm: ready lines the ERP does not hold yet."""
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        rows = conn.execute(
            "select realm_id, count(*) from marts.rpt_billable_lines "
            "where line_status = 'ready' and not is_in_erp group by 1 order by 2 desc"
        ).fetchall()
    return {str(realm): int(count) for realm, count in rows}


def plan_floors(bench_data: Path) -> list[str]:
    """The floor table for each warehouse found with a plan to price (nothing is sent)."""
    found: list[Path] = []
    for path in (
        os.environ.get("BENCH_SYNC_PLAN_WAREHOUSE"),
        bench_data / "transform-large" / "warehouse.duckdb",
        ROOT / "data" / "warehouse.duckdb",
    ):
        if path and has_mart(Path(path)) and Path(path).resolve() not in found:
            found.append(Path(path).resolve())
    if not found:
        return []
    out = [
        "",
        "The first sync's floor from a warehouse's plan (ready lines not in the ERP, per realm; "
        "nothing sent):",
        "",
        "| warehouse | lines | realms | busiest realm's lines | batches of 30 | floor, batches only (min) "
        "| floor with singles (min) | client's estimate, batches only / with singles (min) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for warehouse in found:
        realms = lines_per_realm(warehouse)
        if not realms:
            continue
        busiest = max(realms.values())
        out.append(
            f"| `{warehouse.relative_to(ROOT) if warehouse.is_relative_to(ROOT) else warehouse}` "
            f"| {sum(realms.values()):,} | {len(realms)} | {busiest:,} | {-(-busiest // BATCH):,} "
            f"| {floor_seconds(busiest, False) / 60:.1f} | {floor_seconds(busiest, True) / 60:.1f} "
            f"| {client_seconds(busiest, False) / 60:.1f} / {client_seconds(busiest, True) / 60:.1f} |"
        )
    return out


def candidates(bench_data: Path) -> list[tuple[Path, Path]]:
    found = []
    if os.environ.get("BENCH_SYNC_WORLD") and os.environ.get("BENCH_SYNC_WAREHOUSE"):
        found.append((Path(os.environ["BENCH_SYNC_WORLD"]), Path(os.environ["BENCH_SYNC_WAREHOUSE"])))
    found.append((bench_data / "ingest-demo" / "world", bench_data / "transform-demo" / "warehouse.duckdb"))
    found.append((ROOT / "data" / "worlds" / "demo-7", ROOT / "data" / "warehouse.duckdb"))
    return found


def has_mart(warehouse: Path) -> bool:
    if not warehouse.is_file():
        return False
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        row = conn.execute(
            "select count(*) from information_schema.tables where table_name = 'rpt_billable_lines'"
        ).fetchone()
        return bool(row and row[0])


def bench_sync(bench_data: Path) -> str:
    source = next(
        ((w, h) for w, h in candidates(bench_data) if (w / "world.json").is_file() and has_mart(h)), None
    )
    if source is None:
        return (
            "No demo world with a warehouse holding rpt_billable_lines: run "
            "`make bench BENCH_ARGS='--only ingest --only transform'` (or `make run`) first."
        )
    world_source, warehouse_source = source
    lines = [
        f"Pushing the ready lines of `{world_source}` (warehouse `{warehouse_source.name}`), batches of 30, "
        "three realms in parallel, each run on fresh copies:",
        "",
        "| scenario | lines acknowledged | requests: batches + singles | ERP records read first | 429s "
        "| busiest realm: lines, "
        "batches + singles | its batches / requests in the densest minute | its floor (s) | wall (s) "
        "| lines/s | client CPU (s) | peak RSS (MiB) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    chosen = os.environ.get("BENCH_SYNC_SCENARIOS")  # e.g. "limits": one scenario (a big world)
    scenarios = [s for s in SCENARIOS if not chosen or s[0] in chosen.split(",")]
    if not scenarios:
        raise ValueError(f"BENCH_SYNC_SCENARIOS={chosen!r} names none of {[s[0] for s in SCENARIOS]}")
    for name, label, server_flags, client_flags in scenarios:
        out = bench_data / f"sync-{world_source.name}-{name}"
        shutil.rmtree(out, ignore_errors=True)
        world = out / "world"
        shutil.copytree(
            world_source, world, ignore=shutil.ignore_patterns("sandbox-*.log", "erp_live.sqlite*")
        )
        (out / "wh").mkdir()
        warehouse = out / "wh" / "warehouse.duckdb"
        shutil.copyfile(warehouse_source, warehouse)
        with running_sandbox(world, port=0, flags=server_flags, timeout_s=600) as base_url:
            env = {**os.environ, **sandbox_settings(base_url)}
            command = [sys.executable, "-m", "reverse_etl", "--warehouse", str(warehouse), *client_flags]
            started = time.monotonic()
            process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
            _, status, usage = os.wait4(process.pid, 0)
            seconds = time.monotonic() - started
            if os.waitstatus_to_exitcode(status) != 0:
                raise RuntimeError(f"sync failed in the {name} scenario; run it by hand to see why")
            log = requests.get(f"{base_url}/_sandbox/faults/log", timeout=30).json()["entries"]
        throttled = Counter(entry["fault"] for entry in log)
        with sqlite3.connect(warehouse.with_name("ledger.sqlite")) as conn:
            acknowledged, requests_sent, records_read = conn.execute(
                "select lines_acknowledged, requests_sent, erp_records_read from sync_runs "
                "order by started_at desc limit 1"
            ).fetchone()
            # per realm: batches and singles written, and the lines they carried
            sent = conn.execute(
                "select realm_id, requestid like 'billable-s-%', count(*), sum(json_array_length(items)) "
                "from batches group by 1, 2"
            ).fetchall()
            # when each request went out (its first attempt), and whether it was a batch
            stamps = conn.execute(
                "select realm_id, min(sent_at), min(path) like 'batch?%' from audit_log "
                "group by realm_id, requestid"
            ).fetchall()
        realms: dict[str, list[int]] = {}  # realm: [lines, batches, singles]
        for realm, single, count, carried in sent:
            entry = realms.setdefault(realm, [0, 0, 0])
            entry[0] += carried
            entry[2 if single else 1] += count
        busiest_realm, (busy_lines, busy_batches, busy_singles) = max(realms.items(), key=lambda kv: kv[1][0])
        batches = sum(entry[1] for entry in realms.values())
        singles = sum(entry[2] for entry in realms.values())
        peak_batches = densest_minute(
            [(r, t) for r, t, is_batch in stamps if is_batch and r == busiest_realm]
        )
        peak_minute = densest_minute([(r, t) for r, t, _ in stamps if r == busiest_realm])
        floor = (
            "–" if name == "unlimited" else f"{floor_seconds(busy_lines, '--singles' in client_flags):.0f}"
        )
        row = (
            f"| {label} | {acknowledged:,} | {requests_sent:,}: {batches:,} + {singles:,} | "
            f"{records_read:,} | "
            f"{throttled['rate_limit'] + throttled['concurrency_limit'] + throttled['batch_rate_limit']:,} | "
            f"{busy_lines:,}: {busy_batches:,} + {busy_singles:,} | {peak_batches:,} / {peak_minute:,} | "
            f"{floor} | {seconds:.1f} | {acknowledged / seconds:,.0f} | "
            f"{usage.ru_utime + usage.ru_stime:.1f} | "
            f"{usage.ru_maxrss / 1024:,.0f} |"
        )
        lines.append(row)
        print(row, flush=True)
    lines += [
        "",
        "Wall time is the whole `python -m reverse_etl` process: reading the mart, the plan, writing every",
        "batch to the ledger before sending it (fsync'd SQLite), reading what the ERP holds, the requests,",
        "and the snapshot export (the first sync reads every TimeActivity each realm holds, 1,000 a request,",
        "before it plans). The floor is the busiest realm's lines over what QuickBooks' limits let",
        "through a minute: 40 batches of 30 (1,200 lines), plus 460 singles when singles are on. A realm",
        "whose lines fit one window of batches (36 × 30 = 1,080) sends batches only and goes at once.",
        *plan_floors(bench_data),
    ]
    return "\n".join(lines)


def densest_minute(stamps: list[tuple[str, str]]) -> int:
    """The most requests one realm sent within any 60 s (sliding window over send times)."""
    by_realm: dict[str, list[datetime]] = {}
    for realm, sent_at in stamps:
        by_realm.setdefault(realm, []).append(datetime.fromisoformat(sent_at.rstrip("Z")))
    best = 0
    for moments in by_realm.values():
        moments.sort()
        start = 0
        for end, moment in enumerate(moments):
            while (moment - moments[start]).total_seconds() >= 60:
                start += 1
            best = max(best, end - start + 1)
    return best
