"""Planting the mess: the defects the seeds describe, at small realistic rates (≥ 2 cases each).

Planting only bends the true data; what counts as a defect is decided afterwards by evaluating
each rule on that data (manifest.py), so natural cases are caught too.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from sandbox.generate.common import DAY, HOUR, NEVER, Calendar, month_end, rng_for, weekday
from sandbox.generate.firm import FIRST, LAST, LEAD_GRADE, Firm
from sandbox.generate.portfolio import NO_DAY, Portfolio
from sandbox.generate.time_entries import (
    PLANT_CLOSED,
    PLANT_DUP,
    PLANT_INVALID,
    PLANT_LATE_FIX,
    PLANT_NEVER,
    PLANT_NONE,
    PLANT_OUTSIDE,
    PLANT_UNKNOWN_PROJECT,
    PLANT_UNKNOWN_USER,
    Entries,
    pick_notes,
)

LEGACY_NAMES = [
    "Acme Widgets",
    "Globex Corporation",
    "Initech",
    "Umbrella Services",
    "Stark Supplies",
    "Wayne Consulting",
    "Hooli Europe",
    "Vandelay Industries",
    "Soylent Foods",
    "Tyrell Systems",
]


@dataclass
class Mess:
    """Identity-level plants decided before any record is written."""

    harvest_code: dict[int, str] = field(default_factory=dict)  # project → mistyped Harvest code
    harvest_client_name: dict[int, str] = field(default_factory=dict)  # account → Harvest name
    erp_client_name: dict[int, str] = field(default_factory=dict)  # account → ERP name
    no_erp_customer: set[int] = field(default_factory=set)  # accounts the ERP never got
    erp_twin: set[int] = field(default_factory=set)  # accounts with a legacy same-name twin
    legacy: list[tuple[int, str]] = field(default_factory=list)  # (entity, name) old customers
    rate_overlap: set[tuple[int, int]] = field(default_factory=set)  # (project, role) left open
    no_rate: set[tuple[int, int]] = field(default_factory=set)  # (project, role) missing
    stale_harvest_rates: set[int] = field(default_factory=set)  # projects not re-rated in Harvest
    # Harvest users HR does not know: (entity, first, last, email, is_contractor)
    unknown_users: list[tuple[int, str, str, str, bool]] = field(default_factory=list)
    # Harvest projects the PSA does not have: (account, code, name)
    unknown_projects: list[tuple[int, str, str]] = field(default_factory=list)


def _count(rng, n: int, rate: float) -> int:
    return max(2, round(n * rate))


def plant_identity(cal: Calendar, firm: Firm, pf: Portfolio, seed: int) -> Mess:
    """Decide the name drift, code variants, legacy customers, rate-card gaps and strangers."""
    rng = rng_for(seed, "mess-identity")
    mess = Mess()
    n_acc = len(pf.acc_name)
    clients = np.unique(pf.p_account[: pf.n_client][~pf.p_cancelled[: pf.n_client]])
    drift = rng.choice(clients, size=min(_count(rng, clients.size, 0.08), clients.size), replace=False)
    for k, a in enumerate(np.sort(drift).tolist()):
        base = pf.acc_name[a]
        stem = base.split(" Inc.")[0].split(" Ltd")[0].split(" GmbH")[0].split(" LLC")[0]
        stem = stem.split(" Corp.")[0].split(" plc")[0].split(" AG")[0]
        if k % 2 == 0:
            mess.harvest_client_name[a] = (
                f"{stem}, Inc." if not base.endswith("Inc.") else f"{stem} Incorporated"
            )
        if k % 2 == 1 or k % 3 == 0:
            mess.erp_client_name[a] = (
                f"{stem.upper()} LTD" if not base.upper().endswith("LTD") else stem.upper()
            )

    codes = rng.choice(pf.n_client, size=min(_count(rng, pf.n_client, 0.04), pf.n_client), replace=False)
    for k, p in enumerate(np.sort(codes).tolist()):
        number = int(pf.p_code[p].split("-")[1])
        mess.harvest_code[p] = f"prj-{number}" if k % 2 == 0 else f"PRJ{number:05d}"

    # ambiguous matches: a legacy twin with the account's exact name, and an account the ERP lacks
    rest = np.setdiff1d(clients, drift)
    first_day = pf.p_start[: pf.n_client]
    acc_first: np.ndarray | list[int] = (
        np.array([first_day[pf.p_account[: pf.n_client] == a].min() for a in rest]) if rest.size else []
    )
    late_start = rest[np.asarray(acc_first) >= cal.clock_day - 40] if rest.size else rest
    if late_start.size:
        mess.no_erp_customer.add(int(late_start[-1]))
    elif rest.size:
        mess.no_erp_customer.add(int(rest[-1]))
    twins = [int(a) for a in rest if int(a) not in mess.no_erp_customer]
    for a in twins[: max(1, round(clients.size * 0.03))]:
        mess.erp_twin.add(a)
    for k in range(_count(rng, n_acc, 0.05)):
        mess.legacy.append((k % 3, LEGACY_NAMES[k % len(LEGACY_NAMES)] + ("" if k < 10 else f" {k}")))

    # rate cards: an amendment that forgot to close the old version, and a role with no rate
    amended = np.flatnonzero(pf.p_amend[: pf.n_client] != NO_DAY)
    for p in rng.choice(amended, size=min(max(1, round(amended.size * 0.08)), amended.size), replace=False):
        roles = firm.grade[pf.a_emp[(pf.a_proj == p) & ~pf.a_lead]]
        role = int(np.bincount(roles).argmax()) if roles.size else int(firm.grade[pf.p_lead[p]])
        mess.rate_overlap.add((int(p), role))
    staffed = np.flatnonzero(~pf.a_lead & (pf.a_end - pf.a_start > 20) & (pf.a_start < cal.clock_day - 10))
    staffed = staffed[np.isin(pf.a_proj[staffed], amended, invert=True)]
    for a in rng.choice(staffed, size=min(max(1, round(pf.n_client * 0.01)), staffed.size), replace=False):
        mess.no_rate.add((int(pf.a_proj[a]), int(firm.grade[pf.a_emp[a]])))
    mess.stale_harvest_rates = {int(p) for p in amended if rng.random() < 0.3}

    for k in range(_count(rng, firm.n, 0.004)):
        entity = int(rng.integers(3))
        first, last = FIRST[rng.integers(len(FIRST))], LAST[rng.integers(len(LAST))]
        if k % 2 == 0:
            mess.unknown_users.append(
                (entity, first, last, f"{first}.{last}@contractors.example".lower(), True)
            )
        else:
            alias = f"{first[0]}.{last}{k}@billable-partners.example".lower()
            mess.unknown_users.append((entity, first, last, alias, False))
    for k in range(_count(rng, pf.n_client, 0.01)):
        a = int(rng.choice(clients))
        code = f"PRJ-9{k:04d}" if k % 2 == 0 else f"ADHOC-{k + 1:03d}"
        mess.unknown_projects.append((a, code, f"{pf.acc_name[a].split(' ')[0]} ad-hoc support"))
    return mess


def plant_entries(
    cal: Calendar, firm: Firm, pf: Portfolio, mess: Mess, entries: Entries, seed: int
) -> Entries:
    """Add the duplicate, impossible, out-of-contract, unknown-project and stranger entries."""
    rng = rng_for(seed, "mess-entries")
    n = entries.size
    extra: list[Entries] = []
    history = (entries.day >= cal.start_day) & (entries.day < cal.horizon_day - 7)

    # duplicates: the same entry typed twice (the copy is created a little later)
    pool = np.flatnonzero(history & (entries.plant == PLANT_NONE))
    dups = rng.choice(pool, size=_count(rng, n, 0.001), replace=False)
    entries.plant[dups] = PLANT_DUP
    copy = entries.take(dups)
    extra.append(copy)

    internal = np.flatnonzero(history & ~entries.billable & (entries.plant == PLANT_NONE))
    # impossible hours: zero or negative entries, and a day blown past 24 hours by a typo
    bad = rng.choice(internal, size=_count(rng, n, 0.0004), replace=False)
    neg = entries.take(bad)
    neg.hours = rng.choice([0.0, -1.0, -2.5], size=bad.size)
    neg.plant[:] = PLANT_INVALID
    extra.append(neg)
    big = rng.choice(np.setdiff1d(internal, bad), size=_count(rng, n, 0.0002), replace=False)
    day_total = _day_totals(entries)
    huge = entries.take(big)
    huge.hours = np.round((24.0 - day_total[big] + rng.uniform(0.5, 3.0, size=big.size)) * 4) / 4 + 0.25
    huge.note = pick_notes(rng, huge.task)
    huge.plant[:] = PLANT_INVALID
    extra.append(huge)

    # time after the contract ended while the project was still open
    window = np.flatnonzero(
        (pf.p_done[: pf.n_client] != NO_DAY)
        & (pf.p_done[: pf.n_client] >= pf.p_end[: pf.n_client] + 4)
        & ~pf.p_cancelled[: pf.n_client]
        & (pf.p_end[: pf.n_client] > cal.start_day + 10)
    )
    wanted = _count(rng, pf.n_client, 0.01)
    for p in rng.permutation(window)[:wanted]:
        mine = np.flatnonzero((entries.proj == p) & entries.billable & (entries.plant == PLANT_NONE))
        if mine.size == 0:
            continue
        pick = mine[np.argsort(entries.day[mine], kind="stable")[-1:]]
        late = entries.take(np.repeat(pick, 2))
        day = np.array([pf.p_end[p] + 1, pf.p_end[p] + 2])
        day = day + np.where(weekday(day) == 5, 2, np.where(weekday(day) == 6, 1, 0))
        late.day = np.minimum(day, pf.p_done[p] - 1)
        late.plant[:] = PLANT_OUTSIDE
        extra.append(late)

    # unknown project codes: time typed against a code the PSA never had
    base_proj = pf.n_projects
    for k, (account, _code, _name) in enumerate(mess.unknown_projects):
        mine = np.flatnonzero(
            entries.billable
            & history
            & (entries.plant == PLANT_NONE)
            & (pf.p_account[np.minimum(entries.proj, pf.n_projects - 1)] == account)
        )
        if mine.size == 0:
            mine = np.flatnonzero(entries.billable & history & (entries.plant == PLANT_NONE))
        pick = rng.choice(mine, size=min(int(rng.integers(3, 8)), mine.size), replace=False)
        stray = entries.take(pick)
        stray.proj[:] = base_proj + k
        stray.plant[:] = PLANT_UNKNOWN_PROJECT
        extra.append(stray)

    # strangers: Harvest users HR does not know, logging internal time for a couple of weeks
    base_user = firm.n
    for k, (entity, *_rest) in enumerate(mess.unknown_users):
        start = int(rng.integers(cal.start_day, max(cal.clock_day - 15, cal.start_day + 1)))
        days = np.arange(start, start + 14)
        days = days[weekday(days) < 5]
        task = np.full(days.size, 4)
        extra.append(
            Entries.planned(
                user=np.full(days.size, base_user + k),
                proj=np.full(days.size, pf.n_client + entity * 3),
                day=days,
                hours=np.full(days.size, 8.0),
                task=task,
                note=pick_notes(rng, task),
                billable=np.zeros(days.size, dtype=bool),
                plant=np.full(days.size, PLANT_UNKNOWN_USER, dtype=np.int8),
            )
        )
    out = entries
    for part in extra:
        out = out.extend(part)
    return out


def _day_totals(entries: Entries) -> np.ndarray:
    key = entries.user.astype(np.int64) * 100_000 + entries.day
    _uniq, inverse = np.unique(key, return_inverse=True)
    sums = np.bincount(inverse, weights=entries.hours)
    return sums[inverse]


def plant_approvals(
    cal: Calendar, entries: Entries, close_at: dict[tuple[int, int], int], entity_of: np.ndarray, seed: int
) -> None:
    """Billable weeks never approved, and month-end time approved after the period closed."""
    rng = rng_for(seed, "mess-approvals")
    n = entries.size
    old = (entries.day >= cal.start_day) & (entries.day < cal.clock_day - 20) & (entries.plant == PLANT_NONE)
    pool = np.flatnonzero(old & entries.billable)
    week = (entries.day + 3) // 7
    target = _count(rng, n, 0.001)
    chosen: list[np.ndarray] = []
    got = 0
    for seed_entry in rng.permutation(pool):
        if got >= target:
            break
        group = np.flatnonzero(
            (entries.user == entries.user[seed_entry])
            & (week == week[seed_entry])
            & entries.billable
            & (entries.plant == PLANT_NONE)
        )
        chosen.append(group)
        entries.plant[group] = PLANT_NEVER
        got += group.size
    for k, group in enumerate(chosen):
        entries.approved[group] = NEVER
        if k % 2 == 1:
            entries.submitted[group] = NEVER

    month_end_day = month_end(entries.day)
    near_end = (month_end_day - entries.day <= 3) & entries.billable & (entries.plant == PLANT_NONE)
    cand = np.flatnonzero(near_end & (entries.day < cal.clock_day - 45))
    picked = rng.permutation(cand)[: _count(rng, n, 0.0005)]
    for i in np.sort(picked):
        closed = close_at[(int(entity_of[entries.proj[i]]), int(month_end_day[i]))]
        entries.approved[i] = closed + int(rng.integers(2 * HOUR, 5 * DAY))
        entries.plant[i] = PLANT_CLOSED


def plant_after_billing(cal: Calendar, entries: Entries, seed: int) -> None:
    """A few entries are corrected after their line was invoiced."""
    rng = rng_for(seed, "mess-after-billing")
    billed = np.flatnonzero(
        (entries.billed < cal.clock)
        & (entries.corrected == NEVER)
        & (entries.plant == PLANT_NONE)
        & (entries.hours > 1)
    )
    picked = rng.permutation(billed)[: _count(rng, entries.size, 0.0005)]
    for i in np.sort(picked):
        room = max((cal.horizon - int(entries.billed[i])) // DAY - 1, 4)
        entries.corrected[i] = entries.billed[i] + int(rng.integers(3, min(50, room))) * DAY + 3 * HOUR
        entries.new_hours[i] = entries.hours[i] + float(rng.choice([-1.0, -0.5, 0.5, 1.0]))
        entries.plant[i] = PLANT_LATE_FIX


__all__ = ["LEAD_GRADE", "Mess", "plant_after_billing", "plant_approvals", "plant_entries", "plant_identity"]
