"""The ERP's time-driven history, one block of employees at a time: the TimeActivities keyed in late
and in batches, the T&M invoice lines billed from them, and (once every block is done) the invoices.

A block's TimeActivities and lines depend only on the block's own entries; what spans blocks (which
projects a run invoices, in which order, the invoices' totals and payments) is computed from every
block's lines together, which are small numeric rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from sandbox.generate.blocks import Parts
from sandbox.generate.common import (
    DAY,
    HOUR,
    NEVER,
    REALMS,
    Calendar,
    Keyed,
    date_col,
    month_end,
    round_cents,
)
from sandbox.generate.erp import SECONDS_PER_INVOICE, Erp, _next_wednesday
from sandbox.generate.erp_invoices import (
    fixed_fee_lines,
    fixed_frame,
    invoice_chunk,
    payments_frame,
    plan_invoices,
)
from sandbox.generate.firm import GRADE_NAMES, Firm
from sandbox.generate.mess import PlantPlan, _chosen
from sandbox.generate.portfolio import Portfolio, role_rate
from sandbox.generate.rates import RateCards
from sandbox.generate.time_entries import ID_BASE, NOTE_TEXT, PLANT_NONE, Entries
from sandbox.generate.versions import collapse

LINE_SCHEMA = {
    "ent": pl.Int64,
    "proj": pl.Int64,
    "run_pos": pl.Int64,
    "t": pl.Int64,
    "Amount": pl.Float64,
    "Qty": pl.Float64,
    "UnitPrice": pl.Float64,
    "role": pl.Int64,
    "service_day": pl.Int64,
    "ta_id": pl.Int64,
}


@dataclass
class Billing:
    """A block's TimeActivities: `ta` indexes the block's entries; the rest is one value per TA."""

    ta: np.ndarray
    ent: np.ndarray
    proj: np.ndarray
    emp: np.ndarray
    role: np.ndarray
    day: np.ndarray
    created: np.ndarray
    hours: np.ndarray
    rate: np.ndarray
    ta_id: np.ndarray
    run_pos: np.ndarray
    billed_at: np.ndarray  # NEVER when no run billed it

    @property
    def billed(self) -> np.ndarray:
        return self.billed_at < NEVER


def bill_block(
    cal: Calendar,
    firm: Firm,
    pf: Portfolio,
    rates: RateCards,
    erp: Erp,
    plan: PlantPlan,
    entries: Entries,
    seed: int,
) -> Billing:
    """Approved billable T&M time entered into the ERP (a little leaks), billed at the first run that
    covers its month; marks the billed entries (`entries.billed`)."""
    run_end, run_at = erp.run_end, erp.run_at
    proj = entries.proj
    known = proj < pf.n_projects
    safe_proj = np.where(known, proj, 0)
    is_tm = known & (pf.p_method[safe_proj] == 0)
    has_job = np.array([p in erp.job_of_project for p in range(pf.n_projects)])[safe_proj]
    entered = _next_wednesday(entries.approved // DAY + 4) * DAY + 14 * HOUR  # when keyed into the ERP
    eligible = (
        is_tm
        & has_job
        & (entries.user < firm.n)
        & entries.billable
        & (entries.approved < NEVER)
        & (entries.day <= erp.manual_last_month_end)
        & (entries.day >= cal.start_day)
        & (entered <= (run_at[-1] if run_at.size else 0))
        & (entries.deleted == NEVER)
        & (entries.hours > 0)
    )
    # revenue leakage: a small share of approved billable time is simply never entered
    u = Keyed(seed, "erp-leak", entries.key).random()
    leak = _chosen(u, eligible & (entries.plant == PLANT_NONE), entries.user, plan.forced["leak"], 0.004)
    eligible[leak] = False
    ta = np.flatnonzero(eligible)
    ta_proj = proj[ta]
    ta_emp = entries.user[ta]
    ta_role = firm.grade[ta_emp]
    ta_day = entries.day[ta]
    ta_created = entered[ta]
    ta_hours = np.where(entries.corrected[ta] <= ta_created, entries.new_hours[ta], entries.hours[ta])
    rate = rates.true_rate(pf, ta_proj, ta_role, ta_day)
    fallback = role_rate(ta_role, [pf.p_currency[p] for p in ta_proj.tolist()], np.ones(ta.size))
    # billed at the first run at or after the TA exists that covers its month
    run_pos = np.maximum(np.searchsorted(run_end, month_end(ta_day)), np.searchsorted(run_at, ta_created))
    billed_at = np.where(run_pos < run_at.size, run_at[np.minimum(run_pos, max(run_at.size - 1, 0))], NEVER)
    billed = billed_at < NEVER
    entries.billed[ta[billed]] = billed_at[billed] + HOUR
    return Billing(
        ta=ta,
        ent=pf.p_entity[ta_proj],
        proj=ta_proj,
        emp=ta_emp,
        role=ta_role,
        day=ta_day,
        created=ta_created,
        hours=ta_hours,
        rate=np.where(np.isnan(rate), fallback, rate),
        ta_id=entries.id[ta] - ID_BASE + 1,
        run_pos=run_pos,
        billed_at=billed_at,
    )


def line_rows(bill: Billing) -> pl.DataFrame:
    """The block's T&M invoice lines, numeric (one per billed TimeActivity)."""
    b = bill.billed
    return pl.DataFrame(
        {
            "ent": bill.ent[b],
            "proj": bill.proj[b],
            "run_pos": bill.run_pos[b],
            "t": bill.billed_at[b],
            "Amount": round_cents(bill.hours[b] * bill.rate[b]),
            "Qty": bill.hours[b],
            "UnitPrice": bill.rate[b],
            "role": bill.role[b],
            "service_day": bill.day[b],
            "ta_id": bill.ta_id[b],
        },
        schema=LINE_SCHEMA,
    )


def pc_done(pf: Portfolio, erp: Erp, entries: Entries) -> np.ndarray:
    """Approved hours on each percent-complete project by each billing run ([project, run]); the
    quarter-hour values add up exactly, so the firm's total does not depend on the block split."""
    pc = np.flatnonzero(pf.p_method == 2)
    out = np.zeros((pc.size, erp.run_end.size))
    sel = np.isin(entries.proj, pc) & (entries.approved < NEVER) & (entries.hours > 0)
    idx = np.flatnonzero(sel)
    row = np.searchsorted(pc, entries.proj[idx])
    for r, (end, at) in enumerate(zip(erp.run_end.tolist(), erp.run_at.tolist(), strict=True)):
        ok = (entries.day[idx] <= end) & (entries.approved[idx] <= at)
        out[:, r] += np.bincount(row[ok], weights=entries.hours[idx][ok], minlength=pc.size)
    return out


@dataclass
class Invoicing:
    """What spans blocks: each T&M invoice's id per (project, run), and the order of each run's
    invoices (a TimeActivity's billed stamp is its invoice's moment in the run)."""

    tm_keys: np.ndarray  # sorted proj × runs + run_pos of every T&M invoice
    tm_ids: np.ndarray  # invoice id for each tm_keys
    numbers: dict[int, str]  # invoice id → DocNumber
    pair_keys: np.ndarray  # sorted run_pos × (n_projects + 1) + proj of billed pairs
    pair_rank: np.ndarray  # the pair's position in its run


def store_lines(folder: Path, block: int, lines: pl.DataFrame) -> pl.DataFrame:
    """Spill a block's T&M lines to disk, one file per billing run (an invoice's lines all belong
    to one run); returns the block's billed (project, run) pairs."""
    for (run,), part in sorted(lines.partition_by("run_pos", as_dict=True).items()):
        target = folder / f"run-{int(run):04d}" / f"{block:06d}.parquet"
        target.parent.mkdir(parents=True, exist_ok=True)
        part.write_parquet(target, compression="lz4")
    return lines.select("proj", "run_pos").unique()


def _tm_lines(lines: pl.DataFrame, run_day: np.ndarray) -> pl.DataFrame:
    """Numeric T&M lines → invoice line rows (LINE_COLUMNS)."""
    grades = list(range(len(GRADE_NAMES)))
    return lines.with_columns(
        pl.col("run_pos")
        .replace_strict(list(range(run_day.size)), run_day.tolist(), return_dtype=pl.Int64)
        .alias("txn_day")
    ).select(
        "ent",
        pl.format("tm:{}:{}", "proj", "txn_day").alias("key"),
        "proj",
        "txn_day",
        "t",
        "Amount",
        "Qty",
        "UnitPrice",
        (pl.col("role") + 1).cast(pl.String).alias("item_value"),
        pl.col("role").replace_strict(grades, GRADE_NAMES, return_dtype=pl.String).alias("item_name"),
        pl.col("role")
        .replace_strict(grades, [f"{g} time" for g in GRADE_NAMES], return_dtype=pl.String)
        .alias("Description"),
        "service_day",
        "ta_id",
        pl.lit(None, dtype=pl.String).alias("note"),
    )


def build_invoices(
    cal: Calendar,
    pf: Portfolio,
    erp: Erp,
    folder: Path,
    pairs: pl.DataFrame,
    pc_hours: np.ndarray,
    story: dict,
    contract_numbers: list[str],
    target: Path,
) -> Invoicing:
    """Every invoice (written to `target` one billing run at a time, reading that run's lines from
    `folder`) and every payment (into `erp.frames`), from all blocks' T&M lines and the fixed fees."""
    n_runs = max(int(erp.run_at.size), 1)
    run_day = erp.run_at // DAY
    pairs = pairs.unique().sort("run_pos", "proj")
    run_pos, proj = pairs["run_pos"].to_numpy(), pairs["proj"].to_numpy()
    tm_heads = pl.DataFrame(
        {
            "key": [f"tm:{p}:{d}" for p, d in zip(proj.tolist(), run_day[run_pos].tolist(), strict=True)],
            "ent": pf.p_entity[proj],
            "proj": proj,
            "txn_day": run_day[run_pos],
            "t": erp.run_at[run_pos],
            "note": pl.Series([None] * pairs.height, dtype=pl.String),
        },
        schema_overrides={"ent": pl.Int64, "proj": pl.Int64, "txn_day": pl.Int64, "t": pl.Int64},
    )
    fixed = fixed_frame(
        fixed_fee_lines(
            cal, pf, pc_hours, story, contract_numbers, erp.run_end, erp.run_at, erp.job_of_project
        )
    )
    fixed_heads = fixed.group_by("key", maintain_order=True).agg(
        pl.col("ent").first(),
        pl.col("proj").first(),
        pl.col("txn_day").first(),
        pl.col("t").first(),
        pl.col("note").first(),
    )
    plan = plan_invoices(cal, pl.concat([tm_heads, fixed_heads.select(tm_heads.columns)]), erp.rng)
    parts = Parts(target)
    for run in range(n_runs):
        files = sorted((folder / f"run-{run:04d}").glob("*.parquet"))
        if files:
            lines = _tm_lines(pl.concat([pl.read_parquet(f) for f in files]), run_day)
            chunk = invoice_chunk(pf, plan, lines, erp.fx, erp.job_of_project)
            parts.add(collapse(chunk, ["_realm", "Id"], cal.clock, cal.horizon))
    if fixed.height:
        chunk = invoice_chunk(pf, plan, fixed, erp.fx, erp.job_of_project)
        parts.add(collapse(chunk, ["_realm", "Id"], cal.clock, cal.horizon))
    parts.finish()
    erp.frames["Payment"] = payments_frame(pf, plan, erp.job_of_project)
    heads = plan.heads
    erp.invoice_numbers = dict(
        zip(heads["Id"].cast(pl.Int64).to_list(), heads["DocNumber"].to_list(), strict=True)
    )
    tm_ids = tm_heads.select("key").join(
        heads.select("key", "Id"), on="key", how="left", maintain_order="left"
    )
    keys = proj * n_runs + run_pos
    order = np.argsort(keys)
    first_of_run = np.searchsorted(run_pos, run_pos, side="left")
    return Invoicing(
        tm_keys=keys[order].astype(np.int64),
        tm_ids=tm_ids["Id"].cast(pl.Int64).to_numpy()[order],
        numbers=erp.invoice_numbers,
        pair_keys=(run_pos * (pf.n_projects + 1) + proj).astype(np.int64),
        pair_rank=np.arange(pairs.height) - first_of_run,
    )


def mark_invoiced(erp: Erp, inv: Invoicing, entries: Entries, bill: Billing) -> None:
    """Each billed entry learns its invoice (Harvest shows the invoice it went out on)."""
    b = bill.billed
    n_runs = max(int(erp.run_at.size), 1)
    key = bill.proj[b] * n_runs + bill.run_pos[b]
    entries.invoice[bill.ta[b]] = inv.tm_ids[np.searchsorted(inv.tm_keys, key)]


def time_activity_frame(
    cal: Calendar, pf: Portfolio, firm: Firm, erp: Erp, inv: Invoicing, entries: Entries, bill: Billing
) -> pl.DataFrame:
    """The block's TimeActivity history (`_t` + fields), in employee order."""
    b = bill.billed
    offsets = np.zeros(bill.ta.size, dtype=np.int64)
    if b.any():
        pos = np.searchsorted(inv.pair_keys, bill.run_pos[b] * (pf.n_projects + 1) + bill.proj[b])
        offsets[b] = inv.pair_rank[pos] * SECONDS_PER_INVOICE
    whole = np.floor(bill.hours).astype(np.int64)
    minutes = np.round((bill.hours - whole) * 60).astype(np.int64)
    job_ids = np.array([erp.job_of_project.get(p, "") for p in range(pf.n_projects)], dtype=object)
    notes = np.array(NOTE_TEXT, dtype=object)[entries.note[bill.ta]]
    frame = pl.DataFrame(
        {
            "_emp": bill.emp,
            "_realm": np.array(REALMS, dtype=object)[bill.ent],
            "Id": bill.ta_id.astype(str),
            "_t": np.where(b, np.maximum(bill.billed_at + offsets, bill.created), bill.created),
            "TxnDate": date_col(bill.day, "TxnDate"),
            "NameOf": "Employee",
            "emp_value": erp.emp_id[bill.emp].astype(str),
            "emp_name": np.array([firm.name(e) for e in range(firm.n)], dtype=object)[bill.emp],
            "cust_value": job_ids[bill.proj],
            "cust_name": np.array(pf.p_code, dtype=object)[bill.proj],
            "item_value": (bill.role + 1).astype(str),
            "item_name": np.array(GRADE_NAMES, dtype=object)[bill.role],
            "BillableStatus": np.where(bill.billed_at <= cal.clock, "HasBeenBilled", "Billable"),
            "HourlyRate": bill.rate,
            "Hours": whole,
            "Minutes": minutes,
            "Description": [
                f"harvest:{i} {note}"
                for i, note in zip(entries.id[bill.ta].tolist(), notes.tolist(), strict=True)
            ],
        },
        schema_overrides={
            "_realm": pl.String,
            "emp_name": pl.String,
            "cust_value": pl.String,
            "cust_name": pl.String,
            "Description": pl.String,
        },
    )
    return frame.select(
        "_emp",
        "_realm",
        "Id",
        "_t",
        "TxnDate",
        "NameOf",
        pl.struct(pl.col("emp_value").alias("value"), pl.col("emp_name").alias("name")).alias("EmployeeRef"),
        pl.struct(pl.col("cust_value").alias("value"), pl.col("cust_name").alias("name")).alias(
            "CustomerRef"
        ),
        pl.struct(pl.col("item_value").alias("value"), pl.col("item_name").alias("name")).alias("ItemRef"),
        "BillableStatus",
        "HourlyRate",
        "Hours",
        "Minutes",
        "Description",
    )


__all__ = [
    "Billing",
    "Invoicing",
    "bill_block",
    "build_invoices",
    "line_rows",
    "mark_invoiced",
    "pc_done",
    "store_lines",
]
