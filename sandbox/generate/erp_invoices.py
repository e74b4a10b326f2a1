"""QuickBooks invoices before the cutover: the lines of fixed-fee work (milestone, percent-complete,
retainer), then every line grouped into invoices with their payments and balances.

`build_erp` (sandbox/generate/erp.py) calls these in a fixed order with its random generator, so
the same seed gives the same invoices.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from sandbox.generate.common import (
    CURRENCIES,
    DAY,
    ENTITY_CODES,
    HOUR,
    REALMS,
    date_col,
    month_index,
    round_cents,
    weekday,
)
from sandbox.generate.portfolio import NO_DAY, Portfolio

FIXED_ITEMS = ["Fixed Fee - Milestone", "Fixed Fee - Progress", "Retainer"]


def fixed_fee_lines(
    cal, pf: Portfolio, pc_hours: np.ndarray, story: dict, contract_numbers, run_end, run_at, job_of_project
):
    """Milestone invoices when a milestone completes, monthly percent-complete and retainer invoices."""
    lines = []
    cutoff = cal.clock
    for sid, p, amount, completed in zip(
        story["id"], story["proj"], story["amount"], story["completed"], strict=True
    ):
        if completed == NO_DAY or p not in job_of_project:
            continue
        day = completed + 5
        day = day + (2 if weekday(np.array([day]))[0] == 5 else 1 if weekday(np.array([day]))[0] == 6 else 0)
        t = day * DAY + 15 * HOUR
        if t >= cutoff or day < cal.start_day:
            continue
        lines.append(
            (
                int(pf.p_entity[p]),
                f"ms:{sid}",
                int(p),
                int(day),
                int(t),
                float(amount),
                1.0,
                float(amount),
                "8",
                FIXED_ITEMS[0],
                f"Milestone {sid}",
                int(completed),
                None,
                f"milestone:{sid}",
            )
        )
    # percent complete: fee × share of budget hours approved so far, less what was billed
    pc = np.flatnonzero(pf.p_method == 2)
    if pc.size and run_end.size:
        for row, p in enumerate(pc.tolist()):
            if p not in job_of_project:
                continue
            fee = float(pf.budget_amount[p])
            billed = 0.0
            for r, (end, at) in enumerate(zip(run_end.tolist(), run_at.tolist(), strict=True)):
                if end < pf.p_start[p] or end < cal.start_day:
                    continue
                done = pc_hours[row, r]
                share = min(1.0, done / max(pf.p_budget_hours[p], 1.0))
                amount = float(round_cents(np.array([fee * share]))[0]) - billed
                amount = float(round_cents(np.array([amount]))[0])
                if amount <= 0:
                    continue
                billed += amount
                number = contract_numbers[p]
                lines.append(
                    (
                        int(pf.p_entity[p]),
                        f"pc:{p}:{end}",
                        int(p),
                        int(at // DAY),
                        int(at),
                        amount,
                        1.0,
                        amount,
                        "9",
                        FIXED_ITEMS[1],
                        f"Progress to {end}",
                        int(end),
                        None,
                        f"percent_complete:{number}",
                    )
                )
    # retainers: the monthly fee on the first weekday of each month of the contract
    for p in np.flatnonzero(pf.p_method == 3).tolist():
        if p not in job_of_project:
            continue
        months = np.unique(month_index(np.arange(max(pf.p_start[p], cal.start_day), pf.p_end[p] + 1)))
        for m in months.tolist():
            day = int((np.datetime64("1970-01", "M") + m).astype("datetime64[D]").astype(np.int64))
            day = max(day, int(pf.p_start[p]))
            day += 2 if weekday(np.array([day]))[0] == 5 else 1 if weekday(np.array([day]))[0] == 6 else 0
            t = day * DAY + 10 * HOUR
            if t >= cutoff or day < cal.start_day:
                continue
            fee = float(pf.monthly_fee[p])
            lines.append(
                (
                    int(pf.p_entity[p]),
                    f"rt:{p}:{m}",
                    int(p),
                    day,
                    t,
                    fee,
                    1.0,
                    fee,
                    "10",
                    FIXED_ITEMS[2],
                    f"Retainer {m}",
                    day,
                    None,
                    f"retainer:{contract_numbers[p]}",
                )
            )
    return lines


LINE_COLUMNS = {
    "ent": pl.Int64,
    "key": pl.String,
    "proj": pl.Int64,
    "txn_day": pl.Int64,
    "t": pl.Int64,
    "Amount": pl.Float64,
    "Qty": pl.Float64,
    "UnitPrice": pl.Float64,
    "item_value": pl.String,
    "item_name": pl.String,
    "Description": pl.String,
    "service_day": pl.Int64,
    "ta_id": pl.Int64,
    "note": pl.String,
}


def fixed_frame(lines: list) -> pl.DataFrame:
    """The fixed-fee lines (tuples from `fixed_fee_lines`) as a line frame."""
    return pl.DataFrame(lines, schema=LINE_COLUMNS, orient="row")


@dataclass
class InvoicePlan:
    """Every invoice's identity (from the set of billing keys alone) and its payment schedule,
    decided before any invoice's lines are read, so the lines can be read one chunk at a time."""

    heads: pl.DataFrame  # key, ent, proj, txn_day, t, note, Id, DocNumber, global_idx
    pays: pl.DataFrame  # inv (global_idx), day, part (0: first or whole, 1: the rest)
    partial: np.ndarray  # per invoice: paid in two parts
    totals: np.ndarray  # per invoice, filled chunk by chunk


def plan_invoices(cal, heads: pl.DataFrame, rng) -> InvoicePlan:
    """Number the invoices (per realm, in time order) and schedule their payments: most within
    15–55 days, some late, a few in two parts or never."""
    heads = heads.sort(["t", "ent", "key"]).with_columns(pl.int_range(pl.len()).over("ent").alias("seq"))
    heads = heads.with_columns(
        (pl.col("seq") + 1001 + pl.col("ent") * 100_000).cast(pl.String).alias("Id"),
        pl.format(
            "{}-{}",
            pl.col("ent").replace_strict(dict(enumerate(ENTITY_CODES)), return_dtype=pl.String),
            (pl.col("seq") + 1001).cast(pl.String),
        ).alias("DocNumber"),
        pl.int_range(pl.len()).alias("global_idx"),
    ).drop("seq")
    n = heads.height
    txn = heads["txn_day"].to_numpy()
    u = rng.random(n)
    delay1 = np.where(u < 0.15, rng.integers(60, 130, size=n), rng.integers(15, 55, size=n))
    partial = (u >= 0.15) & (u < 0.21)
    unpaid = u >= 0.97
    pays = []  # (inv idx, day, part)
    for i in range(n):
        if unpaid[i]:
            continue
        d1 = int(txn[i] + delay1[i])
        pays.append((i, d1, 0))
        if partial[i]:
            d2 = d1 + int(rng.integers(40, 120))
            if rng.random() < 0.7:
                pays.append((i, d2, 1))
    pays = [p for p in pays if p[1] <= cal.horizon_day]
    frame = pl.DataFrame(pays, schema={"inv": pl.Int64, "day": pl.Int64, "part": pl.Int64}, orient="row")
    return InvoicePlan(heads, frame.sort(["day", "inv"]), partial, np.zeros(n))


def _amounts(plan: InvoicePlan, pays: pl.DataFrame) -> pl.DataFrame:
    """Each payment's amount, from its invoice's total."""
    inv = pays["inv"].to_numpy()
    total = plan.totals[inv]
    first = np.where(plan.partial[inv], round_cents(total * 0.5), total)
    amount = np.where(pays["part"].to_numpy() == 0, first, round_cents(total - first))
    return pays.with_columns(pl.Series("amount", amount, dtype=pl.Float64))


def invoice_chunk(
    pf: Portfolio, plan: InvoicePlan, lines: pl.DataFrame, fx: dict, job_of_project: dict[int, str]
) -> pl.DataFrame:
    """The version history of the invoices whose lines are all in `lines` (created with the full
    balance, then one version per payment received); records their totals in `plan.totals`."""
    heads = plan.heads.join(lines.select("key").unique(), on="key").sort("global_idx")
    frame = lines.join(heads.select("key", "Id"), on="key").sort(
        ["Id", "service_day", "ta_id"], nulls_last=True
    )
    frame = frame.with_columns(pl.int_range(1, pl.len() + 1).over("Id").alias("LineNum"))
    frame = frame.with_columns(date_col(frame["service_day"].to_numpy(), "ServiceDate"))
    line_struct = pl.struct(
        pl.col("LineNum").cast(pl.String).alias("Id"),
        "LineNum",
        "Amount",
        pl.lit("SalesItemLineDetail").alias("DetailType"),
        "Description",
        pl.struct(
            pl.struct(pl.col("item_value").alias("value"), pl.col("item_name").alias("name")).alias(
                "ItemRef"
            ),
            "Qty",
            "UnitPrice",
            "ServiceDate",
        ).alias("SalesItemLineDetail"),
        pl.when(pl.col("ta_id").is_not_null())
        .then(
            pl.concat_list(
                pl.struct(
                    pl.col("ta_id").cast(pl.String).alias("TxnId"), pl.lit("TimeActivity").alias("TxnType")
                )
            )
        )
        .otherwise(pl.lit([], dtype=pl.List(pl.Struct({"TxnId": pl.String, "TxnType": pl.String}))))
        .alias("LinkedTxn"),
    ).alias("Line")
    grouped = frame.group_by("Id", maintain_order=True).agg(line_struct, pl.col("Amount").sum().alias("sum"))
    heads = heads.join(grouped, on="Id").sort("global_idx")
    total = round_cents(heads["sum"].to_numpy())
    index = heads["global_idx"].to_numpy()
    plan.totals[index] = total
    n = heads.height
    job = np.array([job_of_project[p] for p in heads["proj"].to_list()], dtype=object)
    currency = np.array([pf.p_currency[p] for p in heads["proj"].to_list()], dtype=object)
    ent = heads["ent"].to_numpy()
    txn = heads["txn_day"].to_numpy()
    fx_rate = np.ones(n)
    for i in range(n):
        home = CURRENCIES[ent[i]]
        if currency[i] != home:
            fx_rate[i] = fx["table"][(currency[i], home)][txn[i] - fx["days"][0]]
    base = pl.DataFrame(
        {
            "_realm": np.array(REALMS, dtype=object)[ent],
            "Id": heads["Id"],
            "DocNumber": heads["DocNumber"],
            "TxnDate": date_col(txn, "TxnDate"),
            "DueDate": date_col(txn + 30, "DueDate"),
            "cust_value": job,
            "cust_name": np.array([pf.p_code[p] for p in heads["proj"].to_list()], dtype=object),
            "cur": currency,
            "ExchangeRate": fx_rate,
            "TotalAmt": total,
            "PrivateNote": heads["note"],
            "Line": heads["Line"],
            "inv": index,
            "_t0": heads["t"],
        },
        schema_overrides={
            "_realm": pl.String,
            "Id": pl.String,
            "cust_value": pl.String,
            "cust_name": pl.String,
            "cur": pl.String,
        },
    )
    pays = _amounts(plan, plan.pays.filter(pl.col("inv").is_in(pl.Series(index).implode())))
    events = pl.concat(
        [
            pl.DataFrame({"inv": index, "_t": heads["t"].to_numpy(), "paid": np.zeros(n)}),
            pays.select("inv", (pl.col("day") * DAY + 15 * HOUR).alias("_t"), pl.col("amount").alias("paid")),
        ]
    ).sort(["inv", "_t"])
    events = events.with_columns(pl.col("paid").cum_sum().over("inv").alias("paid_to_date"))
    history = events.join(base, on="inv").with_columns(
        pl.struct(pl.col("cust_value").alias("value"), pl.col("cust_name").alias("name")).alias(
            "CustomerRef"
        ),
        pl.struct(pl.col("cur").alias("value")).alias("CurrencyRef"),
        (pl.col("TotalAmt") - pl.col("paid_to_date")).round(2).alias("Balance"),
    )
    return history.select(
        "_realm",
        "Id",
        "_t",
        "DocNumber",
        "TxnDate",
        "DueDate",
        "CustomerRef",
        "CurrencyRef",
        "ExchangeRate",
        "TotalAmt",
        "Balance",
        "PrivateNote",
        "Line",
    )


def payments_frame(pf: Portfolio, plan: InvoicePlan, job_of_project: dict[int, str]) -> pl.DataFrame:
    """Every payment (after every invoice's total is known), numbered per realm in time order."""
    heads = plan.heads.sort("global_idx")
    ent_of = heads["ent"].to_numpy()
    pay = _amounts(plan, plan.pays)
    pay = pay.with_columns(pl.Series("ent", ent_of[pay["inv"].to_numpy()], dtype=pl.Int64))
    pay = pay.with_columns(pl.int_range(pl.len()).over("ent").alias("seq"))
    pidx = pay["inv"].to_numpy()
    proj = heads["proj"].to_numpy()[pidx]
    payment = pl.DataFrame(
        {
            "_realm": np.array(REALMS, dtype=object)[pay["ent"].to_numpy()],
            "Id": (pay["seq"].to_numpy() + 5001 + pay["ent"].to_numpy() * 100_000).astype(str),
            "_t": pay["day"].to_numpy() * DAY + 15 * HOUR,
            "TxnDate": date_col(pay["day"].to_numpy(), "TxnDate"),
            "cust_value": np.array([job_of_project[p] for p in proj.tolist()], dtype=object),
            "cust_name": np.array([pf.p_code[p] for p in proj.tolist()], dtype=object),
            "cur": np.array([pf.p_currency[p] for p in proj.tolist()], dtype=object),
            "TotalAmt": pay["amount"].to_numpy(),
            "inv_id": heads["Id"].to_numpy()[pidx].astype(str),
        },
        schema_overrides={
            "_realm": pl.String,
            "Id": pl.String,
            "cust_value": pl.String,
            "cust_name": pl.String,
            "cur": pl.String,
            "inv_id": pl.String,
        },
    )
    return payment.select(
        "_realm",
        "Id",
        "_t",
        "TxnDate",
        pl.struct(pl.col("cust_value").alias("value"), pl.col("cust_name").alias("name")).alias(
            "CustomerRef"
        ),
        pl.struct(pl.col("cur").alias("value")).alias("CurrencyRef"),
        "TotalAmt",
        pl.concat_list(
            pl.struct(
                pl.col("TotalAmt").alias("Amount"),
                pl.concat_list(
                    pl.struct(pl.col("inv_id").alias("TxnId"), pl.lit("Invoice").alias("TxnType"))
                ).alias("LinkedTxn"),
            )
        ).alias("Line"),
    )
