"""Harvest: users, clients, projects, tasks, time entries (vectorised versions) and expenses."""

from __future__ import annotations

import numpy as np
import polars as pl

from sandbox.generate.common import (
    CURRENCIES,
    DAY,
    HOUR,
    LEGAL_ENTITIES,
    NEVER,
    Calendar,
    date_col,
    rng_for,
    round_cents,
    ts_col,
    valid_from,
)
from sandbox.generate.firm import GRADE_NAMES, Firm
from sandbox.generate.mess import Mess
from sandbox.generate.portfolio import NO_DAY, Portfolio, role_rate
from sandbox.generate.rates import RateCards
from sandbox.generate.time_entries import NOTE_TEXT, TASKS, Entries
from sandbox.generate.versions import collapse

USER_BASE, CLIENT_BASE, PROJECT_BASE, TASK_BASE, EXPENSE_BASE = (
    3_100_000,
    5_100_000,
    6_200_000,
    7_200_000,
    1_500_000_000,
)
CATEGORIES = ["Travel", "Lodging", "Meals", "Mileage"]


def harvest_project_code(pf: Portfolio, mess: Mess, p: int) -> str:
    return mess.harvest_code.get(p, pf.p_code[p])


def user_tables(firm: Firm, mess: Mess) -> dict:
    """Per Harvest user (employees first, then strangers): name, entity and submission habit."""
    names = [firm.name(e) for e in range(firm.n)] + [f"{f} {la}" for _e, f, la, _m, _c in mess.unknown_users]
    entity = np.concatenate([firm.entity, [u[0] for u in mess.unknown_users]]).astype(np.int64)
    daily = np.concatenate([firm.daily_submitter, np.ones(len(mess.unknown_users), dtype=bool)])
    return {"names": names, "entity": entity, "daily": daily}


def client_index(pf: Portfolio) -> tuple[np.ndarray, list[int]]:
    """Harvest client per project (accounts with work, then one internal client per legal entity)."""
    accounts = sorted({int(a) for a in pf.p_account[: pf.n_client]})
    n_acc = len(pf.acc_name)
    proj_client = np.where(pf.p_account >= 0, pf.p_account, n_acc + pf.p_entity)
    return proj_client, accounts


def build_harvest(
    cal: Calendar,
    firm: Firm,
    pf: Portfolio,
    mess: Mess,
    rates: RateCards,
    first_user_day: dict[int, int],
    first_proj_day: dict[int, int],
    seed: int,
) -> tuple[dict[str, pl.DataFrame], dict]:
    """Entity name → collapsed version frame, for all but the time entries (written per block of
    employees by `time_entry_frame`), and the lookups the time entries need.

    `first_user_day` / `first_proj_day`: the first day worked by each stranger (Harvest user HR
    does not know) and on each project the PSA does not have, gathered from every block."""
    out: dict[str, pl.DataFrame] = {}
    users = user_tables(firm, mess)
    n_users = len(users["names"])
    # ---- users ----
    rows = []
    for u in range(n_users):
        if u < firm.n:
            e = u
            first, last, email, contractor = firm.first_name[e], firm.last_name[e], firm.email[e], False
            created = max(int(firm.hire_day[e]), cal.start_day - 900) * DAY + 8 * HOUR
            grade = int(firm.grade[e])
            cost = float(firm.cost_rate[np.searchsorted(firm.cost_emp, e)])
            weekly = float(firm.weekly_hours[e])
            leaves = int(firm.term_day[e])
        else:
            ent, first, last, email, contractor = mess.unknown_users[u - firm.n]
            first_day = first_user_day.get(u)
            created = (first_day - 1 if first_day is not None else cal.start_day) * DAY + 8 * HOUR
            grade, cost, weekly, leaves = 1, 90.0, 40.0, 10**7
        rate = float(role_rate(np.array([grade]), [CURRENCIES[int(users["entity"][u])]], np.ones(1))[0])
        row = {
            "id": USER_BASE + u,
            "first_name": first,
            "last_name": last,
            "email": email,
            "is_contractor": contractor,
            "weekly_capacity": int(weekly * 3600),
            "default_hourly_rate": rate,
            "cost_rate": cost,
            "roles": [GRADE_NAMES[grade]],
        }
        rows.append({**row, "is_active": True, "_t": created})
        if leaves <= cal.horizon_day:
            rows.append({**row, "is_active": False, "_t": (leaves + 1) * DAY + 8 * HOUR})
    out["users"] = collapse(pl.DataFrame(rows, infer_schema_length=None), ["id"], cal.clock, cal.horizon)

    # ---- clients ----
    proj_client, accounts = client_index(pf)
    n_acc = len(pf.acc_name)
    rows = []
    for a in accounts:
        signed = int(pf.p_signed[: pf.n_client][pf.p_account[: pf.n_client] == a].min())
        from sandbox.generate.common import ENTITY_CODES
        from sandbox.generate.portfolio import COUNTRIES

        rows.append(
            {
                "id": CLIENT_BASE + a,
                "name": mess.harvest_client_name.get(a, pf.acc_name[a]),
                "is_active": True,
                "currency": pf.acc_currency[a],
                "address": COUNTRIES[ENTITY_CODES[pf.acc_entity[a]]],
                "_t": (signed + 1) * DAY + 9 * HOUR,
            }
        )
    for ent, entity in enumerate(LEGAL_ENTITIES):
        rows.append(
            {
                "id": CLIENT_BASE + n_acc + ent,
                "name": entity["name"],
                "is_active": True,
                "currency": entity["currency"],
                "address": entity["country"],
                "_t": (cal.start_day - 900) * DAY,
            }
        )
    clients = pl.DataFrame(rows, infer_schema_length=None)
    out["clients"] = collapse(clients, ["id"], cal.clock, cal.horizon)
    client_name = dict(zip(clients["id"].to_list(), clients["name"].to_list(), strict=True))
    client_cur = dict(zip(clients["id"].to_list(), clients["currency"].to_list(), strict=True))

    # ---- projects (the PSA's, then the ones typed in that the PSA never had) ----
    rows = []
    p_codes, p_names, p_client = [], [], []
    for p in range(pf.n_projects):
        cid = CLIENT_BASE + int(proj_client[p])
        code = harvest_project_code(pf, mess, p)
        client = p < pf.n_client
        bill_by = "none" if not client else ("People" if pf.p_method[p] == 0 else "Project")
        row = {
            "id": PROJECT_BASE + p,
            "name": pf.p_title[p],
            "code": code,
            "client": {"id": cid, "name": client_name[cid], "currency": client_cur[cid]},
            "is_billable": client,
            "bill_by": bill_by,
            "budget": float(pf.p_budget_hours[p]) if client else None,
            "starts_on": int(pf.p_start[p]),
            "notes": "",
        }
        created = (int(pf.p_signed[p]) + 1) * DAY + 11 * HOUR
        rows.append(
            {**row, "is_active": True, "ends_on": int(pf.p_orig_end[p]) if client else -1, "_t": created}
        )
        if client and pf.p_amend[p] != NO_DAY:
            rows.append(
                {
                    **row,
                    "is_active": True,
                    "ends_on": int(pf.p_end[p]),
                    "_t": (int(pf.p_amend[p]) - 2) * DAY + 9 * HOUR,
                }
            )
        if client and pf.p_done[p] != NO_DAY:
            rows.append(
                {
                    **row,
                    "is_active": False,
                    "ends_on": int(pf.p_end[p]),
                    "_t": (int(pf.p_done[p]) + 1) * DAY + 9 * HOUR,
                }
            )
        p_codes.append(code)
        p_names.append(pf.p_title[p])
        p_client.append(cid)
    for k, (a, code, name) in enumerate(mess.unknown_projects):
        cid = CLIENT_BASE + a
        p = pf.n_projects + k
        first_day = first_proj_day.get(p)
        created = (first_day - 1 if first_day is not None else cal.start_day) * DAY + 9 * HOUR
        rows.append(
            {
                "id": PROJECT_BASE + p,
                "name": name,
                "code": code,
                "client": {"id": cid, "name": client_name[cid], "currency": client_cur[cid]},
                "is_billable": True,
                "bill_by": "Project",
                "budget": None,
                "starts_on": first_day if first_day is not None else cal.start_day,
                "notes": "set up by delivery team",
                "is_active": True,
                "ends_on": -1,
                "_t": created,
            }
        )
        p_codes.append(code)
        p_names.append(name)
        p_client.append(cid)
    projects = pl.DataFrame(rows, infer_schema_length=None)
    projects = projects.with_columns(
        date_col(projects["starts_on"].to_numpy(), "starts_on"),
        date_col(projects["ends_on"].to_numpy(), "ends_on"),
    )
    out["projects"] = collapse(projects, ["id"], cal.clock, cal.horizon)

    # ---- tasks ----
    out["tasks"] = collapse(
        pl.DataFrame(
            {
                "id": TASK_BASE + np.arange(len(TASKS)),
                "name": TASKS,
                "billable_by_default": [k < 4 for k in range(len(TASKS))],
                "default_hourly_rate": None,
                "is_active": True,
                "_t": (cal.start_day - 900) * DAY,
            }
        ),
        ["id"],
        cal.clock,
        cal.horizon,
    )

    out["expenses"] = _expenses(
        cal, firm, pf, users, p_codes, p_names, p_client, client_name, client_cur, seed
    )
    lookups = {
        "users": users,
        "p_codes": p_codes,
        "p_names": p_names,
        "p_client": p_client,
        "client_name": client_name,
        "client_cur": client_cur,
    }
    return out, lookups


def _entry_rates(firm: Firm, pf: Portfolio, mess: Mess, rates: RateCards, entries: Entries) -> tuple:
    """Harvest's billable rate (stale on projects never re-rated after an amendment) and cost rate."""
    known = (entries.proj < pf.n_projects) & (entries.user < firm.n)
    proj = np.where(entries.proj < pf.n_projects, entries.proj, 0)
    emp = np.where(entries.user < firm.n, entries.user, 0)
    role = firm.grade[emp]
    true = rates.true_rate(pf, proj, role, entries.day)
    stale = np.isin(proj, np.array(sorted(mess.stale_harvest_rates), dtype=np.int64))
    harvest = np.where(stale, rates.first[proj, role], true)
    default = role_rate(role, [CURRENCIES[e] for e in firm.entity[emp]], np.ones(emp.size))
    harvest = np.where(np.isnan(harvest) | ~known, default, harvest)
    billable_rate = np.where(entries.billable, harvest, np.nan)
    key = firm.cost_emp * 100_000 + firm.cost_from
    pos = np.searchsorted(key, emp * 100_000 + entries.day, side="right") - 1
    cost = np.where(entries.user < firm.n, firm.cost_rate[np.maximum(pos, 0)], 90.0)
    return billable_rate, cost


def time_entry_frame(
    cal, firm, pf, mess, rates, entries: Entries, lookups: dict, invoice_numbers: dict[int, str]
) -> pl.DataFrame:
    """A block's time entries: one version at the clock (dated at the entry's last change), then one
    per later event; collapsed, sorted by id then time."""
    users, p_codes, p_names = lookups["users"], lookups["p_codes"], lookups["p_names"]
    p_client, client_name, client_cur = lookups["p_client"], lookups["client_name"], lookups["client_cur"]
    events = np.stack(
        [
            entries.created,
            entries.submitted,
            entries.approved,
            entries.corrected,
            entries.billed,
            entries.deleted,
        ],
        axis=1,
    )
    exists = entries.created <= cal.clock
    past = np.where(events <= cal.clock, events, -1).max(axis=1)
    idx = [np.flatnonzero(exists)]
    when = [past[exists]]
    for j in range(events.shape[1]):
        later = np.flatnonzero((events[:, j] > cal.clock) & (events[:, j] <= cal.horizon))
        idx.append(later)
        when.append(events[later, j])
    row = np.concatenate(idx)
    t = np.concatenate(when)
    order = np.lexsort((t, entries.id[row]))
    row, t = row[order], t[order]

    approved = entries.approved[row] <= t
    submitted = entries.submitted[row] <= t
    billed = entries.billed[row] <= t
    hours = np.where(entries.corrected[row] <= t, entries.new_hours[row], entries.hours[row])
    status = np.where(approved, "approved", np.where(submitted, "submitted", "unsubmitted"))
    billable_rate, cost = _entry_rates(firm, pf, mess, rates, entries)
    proj = entries.proj[row]
    client_ids = np.array(p_client, dtype=np.int64)[proj]
    inv = entries.invoice[row]
    has_inv = billed & (inv >= 0)
    inv_ids = pl.Series("inv", np.where(has_inv, inv, -1), dtype=pl.Int64)
    keys = list(invoice_numbers)
    inv_number = inv_ids.replace_strict(
        keys, [invoice_numbers[k] for k in keys], default=None, return_dtype=pl.String
    )
    name_of_client = {cid: client_name[cid] for cid in set(p_client)}
    cid_list = sorted(name_of_client)
    cid_pos = np.searchsorted(np.array(cid_list), client_ids)
    frame = pl.DataFrame(
        {
            "id": entries.id[row],
            "_valid_from": valid_from(t),
            "_deleted": entries.deleted[row] <= t,
            "spent_date": date_col(entries.day[row], "spent_date"),
            "hours": hours,
            "rounded_hours": np.ceil(hours * 4) / 4,
            "notes": pl.Series(NOTE_TEXT).gather(entries.note[row]),
            "is_locked": approved | billed,
            "locked_reason": np.where(billed, 2, np.where(approved, 1, 0)).astype(np.int8),
            "is_closed": approved,
            "is_billed": billed,
            "is_running": np.zeros(row.size, dtype=bool),
            "billable": entries.billable[row],
            "budgeted": proj < pf.n_client,
            "billable_rate": billable_rate[row],
            "cost_rate": cost[row],
            "approval_status": status,
            "submitted_at": ts_col(np.where(submitted, entries.submitted[row], NEVER), "submitted_at"),
            "approved_at": ts_col(np.where(approved, entries.approved[row], NEVER), "approved_at"),
            "user_id": USER_BASE + entries.user[row],
            "user_name": pl.Series(users["names"]).gather(entries.user[row]),
            "client_id": client_ids,
            "client_name": pl.Series([name_of_client[c] for c in cid_list]).gather(cid_pos),
            "client_currency": pl.Series([client_cur[c] for c in cid_list]).gather(cid_pos),
            "project_id": PROJECT_BASE + proj,
            "project_name": pl.Series(p_names).gather(proj),
            "project_code": pl.Series(p_codes).gather(proj),
            "task_id": TASK_BASE + entries.task[row],
            "task_name": pl.Series(TASKS).gather(entries.task[row]),
            "invoice_id": np.where(has_inv, inv, -1),
            "invoice_number": inv_number,
        }
    )
    return frame.select(
        "id",
        "spent_date",
        "hours",
        "rounded_hours",
        "notes",
        "is_locked",
        pl.when(pl.col("locked_reason") == 2)
        .then(pl.lit("Item Invoiced"))
        .when(pl.col("locked_reason") == 1)
        .then(pl.lit("Item Approved"))
        .otherwise(pl.lit(None, dtype=pl.String))
        .alias("locked_reason"),
        "is_closed",
        "is_billed",
        "is_running",
        "billable",
        "budgeted",
        pl.col("billable_rate").fill_nan(None),
        "cost_rate",
        "approval_status",
        "submitted_at",
        "approved_at",
        pl.struct(pl.col("user_id").alias("id"), pl.col("user_name").alias("name")).alias("user"),
        pl.struct(
            pl.col("client_id").alias("id"),
            pl.col("client_name").alias("name"),
            pl.col("client_currency").alias("currency"),
        ).alias("client"),
        pl.struct(
            pl.col("project_id").alias("id"),
            pl.col("project_name").alias("name"),
            pl.col("project_code").alias("code"),
        ).alias("project"),
        pl.struct(pl.col("task_id").alias("id"), pl.col("task_name").alias("name")).alias("task"),
        pl.when(pl.col("invoice_id") >= 0)
        .then(pl.struct(pl.col("invoice_id").alias("id"), pl.col("invoice_number").alias("number")))
        .alias("invoice"),
        pl.lit(None, dtype=pl.String).alias("external_reference"),
        "_valid_from",
        "_deleted",
    )


def _expenses(
    cal, firm, pf, users, p_codes, p_names, p_client, client_name, client_cur, seed
) -> pl.DataFrame:
    """About one expense claim per consultant-month on client work, approved within days."""
    rng = rng_for(seed, "expenses")
    staff = np.flatnonzero(~pf.a_lead)
    first = np.maximum(pf.a_start[staff], cal.start_day)
    last = np.minimum(pf.a_end[staff], cal.horizon_day - 7)
    months = np.maximum(last - first, 0) / 30.4
    count = rng.poisson(months * 0.7)
    a = np.repeat(staff, count)
    if a.size == 0:
        return pl.DataFrame({"id": [], "_valid_from": []})
    lo, hi = np.repeat(first, count), np.repeat(last, count)
    day = lo + (rng.random(a.size) * np.maximum(hi - lo, 1)).astype(np.int64)
    day = day - np.where((day + 3) % 7 == 5, 1, np.where((day + 3) % 7 == 6, 2, 0))
    cat = rng.integers(0, len(CATEGORIES), size=a.size)
    cost = round_cents(rng.uniform(15, 600, size=a.size))
    proj = pf.a_proj[a]
    user = pf.a_emp[a]
    billable = (pf.p_method[proj] == 0) & (rng.random(a.size) < 0.7)
    created = day * DAY + 19 * HOUR
    submitted = (day + rng.integers(1, 6, size=a.size)) * DAY + 17 * HOUR
    approved = submitted + rng.integers(1, 4, size=a.size) * DAY
    order = np.lexsort((user, day))
    ids = EXPENSE_BASE + np.arange(a.size)
    base = {
        "id": ids,
        "spent_date": date_col(day[order], "spent_date"),
        "total_cost": cost[order],
        "units": np.ones(a.size),
        "notes": pl.Series(CATEGORIES).gather(cat[order]),
        "billable": billable[order],
        "is_billed": np.zeros(a.size, dtype=bool),
        "user": [{"id": USER_BASE + int(u), "name": users["names"][int(u)]} for u in user[order]],
        "client": [
            {"id": p_client[p], "name": client_name[p_client[p]], "currency": client_cur[p_client[p]]}
            for p in proj[order].tolist()
        ],
        "project": [
            {"id": PROJECT_BASE + p, "name": p_names[p], "code": p_codes[p]} for p in proj[order].tolist()
        ],
        "expense_category": [{"id": 8_300_001 + int(c), "name": CATEGORIES[int(c)]} for c in cat[order]],
        "invoice": [None] * a.size,
    }
    frames = []
    for status, t_col in (("unsubmitted", created), ("submitted", submitted), ("approved", approved)):
        frames.append(
            pl.DataFrame(
                base, schema_overrides={"invoice": pl.Struct({"id": pl.Int64, "number": pl.String})}
            ).with_columns(
                pl.lit(status).alias("approval_status"),
                pl.lit(status == "approved").alias("is_locked"),
                ts_col(np.where(status != "unsubmitted", submitted[order], NEVER), "submitted_at"),
                ts_col(np.where(status == "approved", approved[order], NEVER), "approved_at"),
                pl.Series("_t", t_col[order]),
            )
        )
    history = pl.concat(frames)
    cols = [
        "id",
        "spent_date",
        "total_cost",
        "units",
        "notes",
        "billable",
        "is_locked",
        "is_billed",
        "approval_status",
        "submitted_at",
        "approved_at",
        "user",
        "client",
        "project",
        "expense_category",
        "invoice",
        "_t",
    ]
    return collapse(history.select(cols), ["id"], cal.clock, cal.horizon)
