"""Planting the mess: the defects the seeds describe, at small realistic rates (≥ 2 cases each).

Planting only bends the true data; what counts as a defect is decided afterwards by evaluating
each rule on that data (manifest.py), so natural cases are caught too.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from sandbox.generate.common import DAY, HOUR, NEVER, Calendar, Keyed, month_end, record_key, rng_for, weekday
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


@dataclass
class PlantPlan:
    """Who carries the planted time, decided once for the firm so that each block of employees
    plants exactly what the whole firm would: a kind's entries are those whose keyed draw is under
    its rate, plus one on each of the kind's forced employees (so every kind has ≥ 2 cases)."""

    forced: dict[str, np.ndarray]
    outside: list[tuple[int, int, int, int]]  # (project, employee, first day, second day)
    strays: list[tuple[int, int, int, int]]  # (unknown project k, employee, how many, account)
    strangers: list[int]  # first day of each Harvest user HR does not know


def plan_plants(cal: Calendar, firm: Firm, pf: Portfolio, mess: Mess, seed: int) -> PlantPlan:
    """The firm-wide part of planting: forced employees, late-time and stray-code carriers, strangers."""
    rng = rng_for(seed, "mess-plan")
    start = np.maximum(pf.a_start, cal.start_day)
    client = ~pf.a_lead & (pf.a_proj < pf.n_client)
    seasoned = client & (pf.a_start < cal.clock_day - 75) & (pf.a_end > cal.start_day + 30)
    seasoned &= np.minimum(pf.a_end, cal.clock_day - 60) - start > 20
    staff = np.unique(pf.a_emp[seasoned])
    no_customer = np.isin(pf.p_account, np.array(sorted(mess.no_erp_customer), dtype=np.int64))
    tm = seasoned & (pf.p_method[np.minimum(pf.a_proj, pf.n_client - 1)] == 0)
    tm &= ~no_customer[np.minimum(pf.a_proj, pf.n_projects - 1)]
    tm_staff = np.unique(pf.a_emp[tm])
    if tm_staff.size == 0:
        tm_staff = staff
    workers = np.flatnonzero(firm.works[:, : max(1, cal.clock_day - cal.start_day - 20)].any(axis=1))

    def pick(pool: np.ndarray, k: int = 3) -> np.ndarray:
        return np.sort(rng.choice(pool, size=min(k, pool.size), replace=False)) if pool.size else pool

    forced = {
        "dup": pick(workers),
        "negative": pick(workers),
        "huge": pick(workers),
        "never": pick(staff),
        "closed": pick(staff),
        "leak": pick(tm_staff),
        "late_fix": pick(tm_staff),
    }
    window = np.flatnonzero(
        (pf.p_done[: pf.n_client] != NO_DAY)
        & (pf.p_done[: pf.n_client] >= pf.p_end[: pf.n_client] + 4)
        & ~pf.p_cancelled[: pf.n_client]
        & (pf.p_end[: pf.n_client] > cal.start_day + 10)
    )
    outside = []
    for p in rng.permutation(window)[: _count(rng, pf.n_client, 0.01)].tolist():
        on = np.flatnonzero(pf.a_proj == p)
        if on.size == 0:
            continue
        a = on[np.lexsort((pf.a_emp[on], -pf.a_end[on], pf.a_lead[on]))[0]]
        day = np.array([pf.p_end[p] + 1, pf.p_end[p] + 2])
        day = np.minimum(
            day + np.where(weekday(day) == 5, 2, np.where(weekday(day) == 6, 1, 0)), pf.p_done[p] - 1
        )
        outside.append((int(p), int(pf.a_emp[a]), int(day[0]), int(day[1])))
    strays = []
    overlap = np.minimum(pf.a_end, cal.clock_day - 20) - start
    for k, (account, _code, _name) in enumerate(mess.unknown_projects):
        on = np.flatnonzero(client & (pf.p_account[np.minimum(pf.a_proj, pf.n_projects - 1)] == account))
        on = on[overlap[on] > 5]
        if on.size:
            emp = int(pf.a_emp[on[np.lexsort((pf.a_emp[on], -overlap[on]))[0]]])
        else:
            emp = int(pick(staff, 1)[0])
        strays.append((k, emp, int(rng.integers(3, 8)), int(account)))
    strangers = [
        int(rng.integers(cal.start_day, max(cal.clock_day - 15, cal.start_day + 1)))
        for _ in mess.unknown_users
    ]
    return PlantPlan(forced, outside, strays, strangers)


def _chosen(
    u: np.ndarray, candidate: np.ndarray, user: np.ndarray, forced: np.ndarray, rate: float
) -> np.ndarray:
    """Candidates whose draw is under `rate`, plus each forced employee's lowest-drawn candidate."""
    chosen = candidate & (u < rate)
    for employee in forced.tolist():
        mine = np.flatnonzero(candidate & (user == employee))
        if mine.size:
            chosen[mine[np.argmin(u[mine])]] = True
    return np.flatnonzero(chosen)


def _rekey(part: Entries, tag: int, *more: np.ndarray | int) -> Entries:
    part.key = record_key(tag, *more, part.key.view(np.int64))
    return part


def plant_entries(
    cal: Calendar, firm: Firm, pf: Portfolio, mess: Mess, plan: PlantPlan, entries: Entries, seed: int
) -> Entries:
    """Add the duplicate, impossible, out-of-contract and unknown-project entries of the block's
    employees (and, for the block of strangers, the strangers' time)."""
    rng = Keyed(seed, "mess-entries", entries.key)
    u_dup, u_neg, u_huge, u_stray = rng.random(), rng.random(), rng.random(), rng.random()
    extra: list[Entries] = []
    history = (entries.day >= cal.start_day) & (entries.day < cal.horizon_day - 7)

    # duplicates: the same entry typed twice (the copy is created a little later)
    dups = _chosen(u_dup, history & (entries.plant == PLANT_NONE), entries.user, plan.forced["dup"], 0.001)
    entries.plant[dups] = PLANT_DUP
    extra.append(_rekey(entries.take(dups), PLANT_DUP))

    internal = history & ~entries.billable & (entries.plant == PLANT_NONE)
    # impossible hours: zero or negative entries, and a day blown past 24 hours by a typo
    bad = _chosen(u_neg, internal, entries.user, plan.forced["negative"], 0.001)
    neg = _rekey(entries.take(bad), PLANT_INVALID, 1)
    neg.hours = Keyed(seed, "mess-negative", neg.key).choice([0.0, -1.0, -2.5])
    neg.plant[:] = PLANT_INVALID
    extra.append(neg)
    internal[bad] = False
    big = _chosen(u_huge, internal, entries.user, plan.forced["huge"], 0.0005)
    day_total = _day_totals(entries)
    huge = _rekey(entries.take(big), PLANT_INVALID, 2)
    draw = Keyed(seed, "mess-huge", huge.key)
    huge.hours = np.round((24.0 - day_total[big] + draw.uniform(0.5, 3.0)) * 4) / 4 + 0.25
    huge.note = pick_notes(draw.random(), huge.task)
    huge.plant[:] = PLANT_INVALID
    extra.append(huge)

    users = set(np.unique(entries.user).tolist())
    # time after the contract ended while the project was still open
    for p, employee, first, second in plan.outside:
        if employee in users:
            key = record_key(PLANT_OUTSIDE, p, np.array([first, second]))
            draw = Keyed(seed, "mess-outside", key)
            extra.append(
                Entries.planned(
                    user=np.full(2, employee),
                    proj=np.full(2, p),
                    day=np.array([first, second]),
                    hours=draw.choice([2.0, 4.0, 6.0, 8.0]),
                    task=np.zeros(2, dtype=np.int64),
                    note=pick_notes(draw.random(), np.zeros(2, dtype=np.int64)),
                    billable=np.ones(2, dtype=bool),
                    plant=np.full(2, PLANT_OUTSIDE, dtype=np.int8),
                    key=key,
                )
            )

    # unknown project codes: time typed against a code the PSA never had
    account_of = pf.p_account[np.minimum(entries.proj, pf.n_projects - 1)]
    for k, employee, count, account in plan.strays:
        if employee not in users:
            continue
        free = entries.billable & history & (entries.plant == PLANT_NONE) & (entries.user == employee)
        mine = np.flatnonzero(free & (account_of == account))
        if mine.size == 0:
            mine = np.flatnonzero(free)
        pick = np.sort(mine[np.argsort(u_stray[mine], kind="stable")[:count]])
        stray = _rekey(entries.take(pick), PLANT_UNKNOWN_PROJECT, k)
        stray.proj[:] = pf.n_projects + k
        stray.plant[:] = PLANT_UNKNOWN_PROJECT
        extra.append(stray)
    out = entries
    for part in extra:
        out = out.extend(part)
    return out


def stranger_entries(
    cal: Calendar, firm: Firm, pf: Portfolio, mess: Mess, plan: PlantPlan, seed: int
) -> Entries:
    """Harvest users HR does not know, logging internal time for a couple of weeks (their own block)."""
    parts = []
    for k, (entity, *_rest) in enumerate(mess.unknown_users):
        days = np.arange(plan.strangers[k], plan.strangers[k] + 14)
        days = days[weekday(days) < 5]
        task = np.full(days.size, 4)
        key = record_key(PLANT_UNKNOWN_USER, k, days)
        parts.append(
            Entries.planned(
                user=np.full(days.size, firm.n + k),
                proj=np.full(days.size, pf.n_client + entity * 3),
                day=days,
                hours=np.full(days.size, 8.0),
                task=task,
                note=pick_notes(Keyed(seed, "mess-strangers", key).random(), task),
                billable=np.zeros(days.size, dtype=bool),
                plant=np.full(days.size, PLANT_UNKNOWN_USER, dtype=np.int8),
                key=key,
            )
        )
    out = parts[0]
    for part in parts[1:]:
        out = out.extend(part)
    return out


def _day_totals(entries: Entries) -> np.ndarray:
    key = entries.user.astype(np.int64) * 100_000 + entries.day
    _uniq, inverse = np.unique(key, return_inverse=True)
    sums = np.bincount(inverse, weights=entries.hours)
    return sums[inverse]


def plant_approvals(
    cal: Calendar,
    entries: Entries,
    close_at: dict[tuple[int, int], int],
    entity_of: np.ndarray,
    plan: PlantPlan,
    seed: int,
) -> None:
    """Billable weeks never approved, and month-end time approved after the period closed."""
    old = (entries.day >= cal.start_day) & (entries.day < cal.clock_day - 20) & (entries.plant == PLANT_NONE)
    candidate = old & entries.billable
    week = (entries.day + 3) // 7
    group = record_key(entries.user, week)
    draw = Keyed(seed, "mess-never", group)
    u_week, u_submit = draw.random(), draw.random()
    seeds = _chosen(u_week, candidate, entries.user, plan.forced["never"], 0.0015)
    members = np.isin(group, group[seeds]) & entries.billable & (entries.plant == PLANT_NONE)
    entries.plant[members] = PLANT_NEVER
    entries.approved[members] = NEVER
    entries.submitted[members & (u_submit < 0.5)] = NEVER

    month_end_day = month_end(entries.day)
    near_end = (month_end_day - entries.day <= 3) & entries.billable & (entries.plant == PLANT_NONE)
    late = Keyed(seed, "mess-closed", entries.key)
    u_late, lag = late.random(), late.integers(2 * HOUR, 5 * DAY)
    picked = _chosen(
        u_late, near_end & (entries.day < cal.clock_day - 45), entries.user, plan.forced["closed"], 0.006
    )
    for i in picked.tolist():
        closed = close_at[(int(entity_of[entries.proj[i]]), int(month_end_day[i]))]
        entries.approved[i] = closed + int(lag[i])
        entries.plant[i] = PLANT_CLOSED


def plant_after_billing(cal: Calendar, entries: Entries, plan: PlantPlan, seed: int) -> None:
    """A few entries are corrected after their line was invoiced."""
    billed = (
        (entries.billed < cal.clock)
        & (entries.corrected == NEVER)
        & (entries.plant == PLANT_NONE)
        & (entries.hours > 1)
    )
    draw = Keyed(seed, "mess-after-billing", entries.key)
    u = draw.random()
    room = np.maximum((cal.horizon - np.minimum(entries.billed, cal.horizon)) // DAY - 1, 4)
    days, delta = draw.integers(3, np.minimum(50, room)), draw.choice([-1.0, -0.5, 0.5, 1.0])
    picked = _chosen(u, billed, entries.user, plan.forced["late_fix"], 0.00125)
    entries.corrected[picked] = entries.billed[picked] + days[picked] * DAY + 3 * HOUR
    entries.new_hours[picked] = entries.hours[picked] + delta[picked]
    entries.plant[picked] = PLANT_LATE_FIX


__all__ = [
    "LEAD_GRADE",
    "Mess",
    "PlantPlan",
    "plan_plants",
    "plant_after_billing",
    "plant_approvals",
    "plant_entries",
    "plant_identity",
    "stranger_entries",
]
