"""QuickBooks history before the cutover: customers, employees, items, TimeActivities entered
late and in batches, monthly T&M invoices, milestone / percent-complete / retainer invoices,
payments, daily exchange rates and the monthly period close."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl

from sandbox.generate.common import (
    CURRENCIES,
    DAY,
    HOUR,
    REALMS,
    Calendar,
    date_col,
    month_end,
    rng_for,
    weekday,
)
from sandbox.generate.erp_invoices import FIXED_ITEMS
from sandbox.generate.firm import GRADE_NAMES, Firm
from sandbox.generate.mess import Mess
from sandbox.generate.portfolio import NO_DAY, Portfolio, role_rate

CURRENCY_NAMES = {"USD": "United States Dollar", "GBP": "British Pound Sterling", "EUR": "Euro"}


@dataclass
class Erp:
    """History frames (`_t` + `_realm` + fields) for each ERP entity, and what the rules need."""

    frames: dict[str, pl.DataFrame] = field(default_factory=dict)
    close_at: dict[tuple[int, int], int] = field(default_factory=dict)  # (entity, month-end day) → secs
    customer_of_account: dict[tuple[int, int], list[tuple[str, str, str | None]]] = field(
        default_factory=dict
    )
    job_of_project: dict[int, str] = field(default_factory=dict)
    manual_last_month_end: int = 0
    invoice_numbers: dict[int, str] = field(default_factory=dict)  # invoice id → DocNumber (Harvest shows it)
    emp_id: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # ERP Id per employee
    run_end: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # month billed per run
    run_at: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # when each run happened
    fx: dict = field(default_factory=dict)
    rng: np.random.Generator | None = None  # the ERP phase's stream, for the invoices' payments


def period_closes(cal: Calendar) -> dict[tuple[int, int], int]:
    """Each realm closes a month at 18:00 UTC on the fifth working day of the next month."""
    out: dict[tuple[int, int], int] = {}
    ends = np.unique(month_end(np.arange(cal.start_day - 62, cal.horizon_day + 1)))
    for ent in range(3):
        for end in ends.tolist():
            out[(ent, end)] = cal.nth_working_day_after_month(ent, end, 5) * DAY + 18 * HOUR
    return out


def _runs(cal: Calendar) -> tuple[np.ndarray, np.ndarray]:
    """Manual billing runs: for each month, the first weekday ≥ 15 days after month end, 16:00.
    Only runs before the cutover happened by hand."""
    ends = np.unique(month_end(np.arange(cal.start_day, cal.horizon_day + 1)))
    day = ends + 15
    day = day + np.where(weekday(day) == 5, 2, np.where(weekday(day) == 6, 1, 0))
    at = day * DAY + 16 * HOUR
    keep = at < cal.clock
    return ends[keep], at[keep]


# A billing run invoices one project after another; each invoice marks its TimeActivities billed
# when it is created, so their change stamps are spread over the run, not one instant.
SECONDS_PER_INVOICE = 20


def _billing_offsets(run_pos: np.ndarray, project: np.ndarray, billed: np.ndarray) -> np.ndarray:
    """Seconds after its run's start at which each billed TimeActivity's invoice is created."""
    offsets = np.zeros(run_pos.size, dtype=np.int64)
    if not billed.any():
        return offsets
    pairs = np.unique(np.stack([run_pos[billed], project[billed]], axis=1), axis=0)
    first_of_run = np.searchsorted(pairs[:, 0], pairs[:, 0], side="left")
    rank = np.arange(pairs.shape[0]) - first_of_run
    where = np.searchsorted(
        pairs[:, 0] * (project.max() + 1) + pairs[:, 1], run_pos * (project.max() + 1) + project
    )
    offsets[billed] = rank[where[billed]] * SECONDS_PER_INVOICE
    return offsets


def _next_wednesday(days: np.ndarray) -> np.ndarray:
    return days + (2 - weekday(days)) % 7


def build_erp(
    cal: Calendar,
    firm: Firm,
    pf: Portfolio,
    mess: Mess,
    account_ids: list[str],
    seed: int,
) -> Erp:
    """The ERP's customers, employees and items, its billing runs, rates and closes; the time-driven
    part (TimeActivities, invoices, payments) is sandbox/generate/erp_time.py's."""
    rng = rng_for(seed, "erp")
    erp = Erp(close_at=period_closes(cal))
    run_end, run_at = _runs(cal)
    erp.manual_last_month_end = int(run_end[-1]) if run_end.size else cal.start_day - 1

    # ---- customers: one per client account per realm, a job per project, legacy leftovers ----
    # (entity, id, created, name, is the twin, parent, currency, external id)
    cust_rows: list[tuple[int, str, int, str, bool, str | None, str, str | None]] = []
    next_id = [1, 1, 1]
    acc_cust: dict[int, str] = {}
    client_accounts = sorted({int(a) for a in pf.p_account[: pf.n_client]})
    for a in client_accounts:
        ent = int(pf.acc_entity[a])
        projects = np.flatnonzero(pf.p_account[: pf.n_client] == a)
        if a in mess.no_erp_customer:
            continue
        created = int(pf.p_signed[projects].min()) * DAY + 11 * HOUR
        name = mess.erp_client_name.get(a, pf.acc_name[a])
        cid = str(next_id[ent])
        next_id[ent] += 1
        acc_cust[a] = cid
        cust_rows.append((ent, cid, created, name, False, None, pf.acc_currency[a], f"sfdc:{account_ids[a]}"))
        erp.customer_of_account.setdefault((a, ent), []).append((cid, name, f"sfdc:{account_ids[a]}"))
        if a in mess.erp_twin:
            tid = str(next_id[ent])
            next_id[ent] += 1
            cust_rows.append(
                (
                    ent,
                    tid,
                    cal.start_day * DAY - 400 * DAY,
                    pf.acc_name[a],
                    False,
                    None,
                    pf.acc_currency[a],
                    None,
                )
            )
            erp.customer_of_account[(a, ent)].append((tid, pf.acc_name[a], None))
        for p in projects.tolist():
            jid = str(next_id[ent])
            next_id[ent] += 1
            erp.job_of_project[p] = jid
            cust_rows.append(
                (
                    ent,
                    jid,
                    int(pf.p_signed[p]) * DAY + 12 * HOUR,
                    pf.p_code[p],
                    True,
                    cid,
                    pf.p_currency[p],
                    None,
                )
            )
    for ent, name in mess.legacy:
        lid = str(next_id[ent])
        next_id[ent] += 1
        cust_rows.append(
            (ent, lid, cal.start_day * DAY - 700 * DAY, name, False, None, CURRENCIES[ent], None)
        )
    cust = pl.DataFrame(
        cust_rows, schema=["ent", "Id", "_t", "name", "Job", "parent", "cur", "Notes"], orient="row"
    )
    display = {(r[0], r[1]): r[3] for r in cust_rows}
    fqn = [
        name if parent is None else f"{display[(ent, parent)]}:{name}"
        for ent, parent, name in zip(cust["ent"], cust["parent"], cust["name"], strict=True)
    ]
    erp.frames["Customer"] = cust.select(
        pl.col("ent").replace_strict(dict(enumerate(REALMS)), return_dtype=pl.String).alias("_realm"),
        "Id",
        "_t",
        pl.col("name").alias("DisplayName"),
        pl.when(~pl.col("Job")).then(pl.col("name")).alias("CompanyName"),
        pl.Series("FullyQualifiedName", fqn),
        "Job",
        pl.when(pl.col("parent").is_not_null())
        .then(pl.struct(pl.col("parent").alias("value")))
        .alias("ParentRef"),
        pl.lit(True).alias("Active"),
        pl.struct(
            pl.col("cur").alias("value"), pl.col("cur").replace_strict(CURRENCY_NAMES).alias("name")
        ).alias("CurrencyRef"),
        "Notes",
    )

    # ---- employees and items ----
    emp_id = np.zeros(firm.n, dtype=np.int64)
    emp_rows = []
    counters = [1, 1, 1]
    for e in np.lexsort((np.arange(firm.n), firm.hire_day)).tolist():
        ent = int(firm.entity[e])
        emp_id[e] = counters[ent]
        counters[ent] += 1
        created = max(int(firm.hire_day[e]) - 3, cal.start_day - 900) * DAY + 9 * HOUR
        name = firm.name(e)
        base = (
            REALMS[ent],
            str(emp_id[e]),
            name,
            firm.first_name[e],
            firm.last_name[e],
            firm.email[e],
            firm.employee_id[e],
        )
        emp_rows.append((*base, created, True))
        if firm.term_day[e] <= cal.horizon_day:
            emp_rows.append((*base, (int(firm.term_day[e]) + 1) * DAY + 9 * HOUR, False))
    emps = pl.DataFrame(
        emp_rows,
        orient="row",
        schema=[
            "_realm",
            "Id",
            "DisplayName",
            "GivenName",
            "FamilyName",
            "mail",
            "EmployeeNumber",
            "_t",
            "Active",
        ],
    )
    erp.frames["Employee"] = emps.select(
        "_realm",
        "Id",
        "_t",
        "DisplayName",
        "GivenName",
        "FamilyName",
        pl.struct(pl.col("mail").alias("Address")).alias("PrimaryEmailAddr"),
        "EmployeeNumber",
        "Active",
    )
    item_rows = []
    for ent in range(3):
        prices = role_rate(np.arange(len(GRADE_NAMES)), [CURRENCIES[ent]] * len(GRADE_NAMES), np.ones(7))
        for k, name in enumerate(GRADE_NAMES + FIXED_ITEMS):
            price = float(prices[k]) if k < len(GRADE_NAMES) else 0.0
            item_rows.append(
                (REALMS[ent], str(k + 1), cal.start_day * DAY - 900 * DAY, name, "Service", price, True)
            )
    erp.frames["Item"] = pl.DataFrame(
        item_rows, orient="row", schema=["_realm", "Id", "_t", "Name", "Type", "UnitPrice", "Active"]
    )

    erp.emp_id = emp_id
    erp.run_end, erp.run_at = run_end, run_at
    erp.fx = _exchange_rates(cal, seed)
    erp.rng = rng
    rates_fx = erp.fx
    erp.frames["ExchangeRate"] = rates_fx["frame"]
    closes = pl.DataFrame(
        {
            "_realm": [REALMS[ent] for (ent, _end) in erp.close_at],
            "end": [int(end) for (_ent, end) in erp.close_at],
            "_t": list(erp.close_at.values()),
        }
    )
    erp.frames["period_closes"] = closes.select(
        "_realm",
        date_col(closes["end"].to_numpy(), "period_end"),
        "_t",
        pl.from_epoch("_t", time_unit="s")
        .dt.replace_time_zone("UTC")
        .dt.to_string("%Y-%m-%dT%H:%M:%SZ")
        .alias("closed_at"),
    )
    return erp


def _notes(note_idx: np.ndarray) -> list[str]:
    from sandbox.generate.time_entries import NOTE_TEXT

    return [NOTE_TEXT[i] for i in note_idx.tolist()]


def _exchange_rates(cal: Calendar, seed: int) -> dict:
    """USD per EUR and per GBP as a daily random walk; each realm's rows convert foreign → home."""
    rng = rng_for(seed, "fx")
    days = np.arange(cal.start_day - 10, cal.horizon_day + 2)
    walk = np.cumsum(rng.normal(0.0, 0.004, size=(2, days.size)), axis=1)
    usd_per = {"USD": np.ones(days.size), "EUR": 1.09 * np.exp(walk[0]), "GBP": 1.27 * np.exp(walk[1])}
    frames = []
    table: dict[tuple[str, str], np.ndarray] = {}
    for ent in range(3):
        home = CURRENCIES[ent]
        for foreign in CURRENCIES:
            if foreign == home:
                continue
            rate = np.round(usd_per[foreign] / usd_per[home], 6)
            table[(foreign, home)] = rate
            frames.append(
                pl.DataFrame(
                    {
                        "_realm": REALMS[ent],
                        "SourceCurrencyCode": foreign,
                        "TargetCurrencyCode": home,
                        "AsOfDate": date_col(days, "AsOfDate"),
                        "Rate": rate,
                        "_t": days * DAY,
                    }
                )
            )
    return {"frame": pl.concat(frames), "days": days, "table": table}


__all__ = ["NO_DAY", "Erp", "build_erp", "period_closes"]
