"""Kantata: workspaces (client and internal), milestones, assignments and rate cards."""

from __future__ import annotations

import numpy as np
import polars as pl

from sandbox.generate.common import DAY, ENTITY_CODES, HOUR, NEVER, Calendar, date_col, rng_for, round_cents
from sandbox.generate.firm import GRADE_NAMES, PRACTICES, Firm
from sandbox.generate.portfolio import METHODS, NO_DAY, STATUS, Portfolio
from sandbox.generate.rates import RateCards
from sandbox.generate.versions import collapse


def workspace_id(p: int) -> str:
    return str(4_100_000 + p)


def build_stories(cal: Calendar, pf: Portfolio, seed: int) -> dict:
    """Milestones of fixed-fee-by-milestone projects: amounts add up to the fee to the cent."""
    rng = rng_for(seed, "stories")
    out: dict[str, list] = {"id": [], "proj": [], "title": [], "amount": [], "due": [], "completed": []}
    for p in np.flatnonzero(pf.p_method == 1).tolist():
        k = int(rng.integers(2, 6))
        fee = float(pf.budget_amount[p])
        parts = round_cents(np.full(k, fee / k))
        parts[-1] = round_cents(np.array([fee - parts[:-1].sum()]))[0]
        span = int(pf.p_end[p] - pf.p_start[p])
        for j in range(k):
            due = int(pf.p_start[p]) + span * (j + 1) // k
            done = due + int(rng.integers(-5, 10))
            stopped = pf.p_hold[p] != NO_DAY and done >= pf.p_hold[p]
            out["id"].append(str(7_100_000 + len(out["id"])))
            out["proj"].append(p)
            out["title"].append(
                f"Milestone {j + 1}: {['Discovery', 'Design', 'Build', 'Rollout', 'Handover'][j]}"
            )
            out["amount"].append(float(parts[j]))
            out["due"].append(due)
            out["completed"].append(done if done <= cal.horizon_day and not stopped else NO_DAY)
    return out


def build_psa(
    cal: Calendar,
    firm: Firm,
    pf: Portfolio,
    rates: RateCards,
    stories: dict,
    contract_numbers: list[str],
    account_ids: list[str],
) -> dict[str, pl.DataFrame]:
    """Entity name → collapsed version frame."""
    out: dict[str, pl.DataFrame] = {}
    rows = []
    for p in range(pf.n_projects):
        client = p < pf.n_client
        created = (int(pf.p_signed[p]) + 1) * DAY + 10 * HOUR
        a = int(pf.p_account[p])
        row = {
            "id": workspace_id(p),
            "title": pf.p_title[p],
            "project_code": pf.p_code[p],
            "client_name": pf.acc_name[a] if client else None,
            "crm_account_id": account_ids[a] if client else None,
            "contract_number": contract_numbers[p] if client else None,
            "billing_method": METHODS[pf.p_method[p]] if client else "internal",
            "budget_hours": float(pf.p_budget_hours[p]) if client else None,
            "budget_amount": float(pf.budget_amount[p]) if client else None,
            "currency": pf.p_currency[p],
            "practice": PRACTICES[pf.p_practice[p]],
            "legal_entity": ENTITY_CODES[pf.p_entity[p]],
            "project_lead_email": firm.email[int(pf.p_lead[p])],
            "start_date": int(pf.p_start[p]),
            "archived": False,
        }
        events = [(created, "Active", int(pf.p_signed[p]) + 1, int(pf.p_orig_end[p]))]
        if client and pf.p_amend[p] != NO_DAY:
            events.append(
                (
                    (int(pf.p_amend[p]) - 3) * DAY + 12 * HOUR,
                    "Active",
                    int(pf.p_signed[p]) + 1,
                    int(pf.p_end[p]),
                )
            )
        if client and pf.p_hold[p] != NO_DAY:
            events.append(
                (int(pf.p_hold[p]) * DAY + 9 * HOUR, "On Hold", int(pf.p_hold[p]), int(pf.p_end[p]))
            )
        if client and pf.p_done[p] != NO_DAY:
            state = "Cancelled" if pf.p_cancelled[p] else "Completed"
            events.append((int(pf.p_done[p]) * DAY + 17 * HOUR, state, int(pf.p_done[p]), int(pf.p_end[p])))
        for t, status, changed, due in events:
            rows.append(
                {**row, "_t": t, "status": STATUS[status], "status_changed_on": changed, "due_date": due}
            )
    ws = pl.DataFrame(rows, infer_schema_length=None)
    ws = ws.with_columns(
        date_col(ws["start_date"].to_numpy(), "start_date"),
        date_col(ws["due_date"].to_numpy(), "due_date"),
        date_col(ws["status_changed_on"].to_numpy(), "status_changed_on"),
    )
    out["workspaces"] = collapse(ws, ["id"], cal.clock, cal.horizon)

    srows = []
    for sid, p, title, amount, due, done in zip(
        stories["id"],
        stories["proj"],
        stories["title"],
        stories["amount"],
        stories["due"],
        stories["completed"],
        strict=True,
    ):
        row = {
            "id": sid,
            "workspace_id": workspace_id(p),
            "title": title,
            "story_type": "milestone",
            "amount": amount,
            "currency": pf.p_currency[p],
            "due_date": due,
        }
        created = (int(pf.p_signed[p]) + 1) * DAY + 10 * HOUR + 60
        srows.append({**row, "_t": created, "state": "not started", "completed_on": NO_DAY})
        srows.append(
            {
                **row,
                "_t": max(int(pf.p_start[p]) * DAY + 9 * HOUR, created + 1),
                "state": "started",
                "completed_on": NO_DAY,
            }
        )
        if done != NO_DAY:
            srows.append({**row, "_t": done * DAY + 16 * HOUR, "state": "completed", "completed_on": done})
            srows.append(
                {**row, "_t": (done + 7) * DAY + 11 * HOUR, "state": "accepted", "completed_on": done}
            )
    st = pl.DataFrame(srows, infer_schema_length=None) if srows else None
    if st is not None:
        st = st.with_columns(
            date_col(st["due_date"].to_numpy(), "due_date"),
            date_col(st["completed_on"].to_numpy(), "completed_on"),
        )
        out["stories"] = collapse(st, ["id"], cal.clock, cal.horizon)

    names = [firm.name(e) for e in range(firm.n)]
    asg = pl.DataFrame(
        {
            "id": (6_100_000 + np.arange(pf.a_emp.size)).astype(str),
            "workspace_id": (4_100_000 + pf.a_proj).astype(str),
            "assignee_email": pl.Series(firm.email).gather(pf.a_emp),
            "assignee_name": pl.Series(names).gather(pf.a_emp),
            "role": pl.Series(GRADE_NAMES).gather(firm.grade[pf.a_emp]),
            "hours_per_week": pf.a_hpw,
            "start_date": date_col(pf.a_start, "start_date"),
            "end_date": date_col(pf.a_end, "end_date"),
            "_t": np.maximum(pf.a_start - 7, pf.p_signed[pf.a_proj] + 1) * DAY + 13 * HOUR,
        }
    )
    out["assignments"] = collapse(asg, ["id"], cal.clock, cal.horizon)

    cards = np.arange(pf.n_client)
    out["rate_cards"] = collapse(
        pl.DataFrame(
            {
                "id": (8_100_000 + cards).astype(str),
                "workspace_id": (4_100_000 + cards).astype(str),
                "contract_number": contract_numbers[: pf.n_client],
                "title": [f"{pf.p_code[p]} rate card" for p in cards],
                "currency": pf.p_currency[: pf.n_client],
                "_t": (pf.p_signed[: pf.n_client] + 1) * DAY + 10 * HOUR + 120,
            }
        ),
        ["id"],
        cal.clock,
        cal.horizon,
    )
    n = rates.proj.size
    base = {
        "id": (9_100_000 + np.arange(n)).astype(str),
        "rate_card_id": (8_100_000 + rates.proj).astype(str),
        "role": pl.Series(GRADE_NAMES).gather(rates.role),
        "bill_rate": rates.rate,
        "currency": pl.Series(pf.p_currency).gather(rates.proj),
        "effective_from": date_col(rates.eff_from, "effective_from"),
    }
    first = pl.DataFrame(
        {
            **base,
            "effective_to": date_col(np.full(n, -1), "effective_to"),
            "_t": np.maximum(rates.created_day + 1, 0) * DAY + 10 * HOUR + 120,
        }
    )
    closed = rates.closed_day != NO_DAY
    second = pl.DataFrame(
        {
            **base,
            "effective_to": date_col(rates.eff_to, "effective_to"),
            "_t": np.where(closed, rates.closed_day * DAY + 11 * HOUR, NEVER),
        }
    ).filter(pl.Series(closed))
    out["rate_card_versions"] = collapse(pl.concat([first, second]), ["id"], cal.clock, cal.horizon)
    return out
