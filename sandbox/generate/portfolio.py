"""The client portfolio: accounts, contracted projects (with amendments and status timelines)
and who is staffed on what, as parallel arrays the system writers turn into records."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sandbox.generate.common import CURRENCIES, Calendar, rng_for
from sandbox.generate.firm import GRADES, LEAD_GRADE, PRACTICES, TARGETS, Firm

METHODS = ["time_and_materials", "fixed_fee_milestones", "fixed_fee_percent_complete", "retainer"]
METHOD_SF = ["Time and Materials", "Fixed Fee - Milestones", "Fixed Fee - Percent Complete", "Retainer"]
METHOD_SHARE = [0.55, 0.18, 0.12, 0.15]
INDUSTRIES = [
    "Banking",
    "Insurance",
    "Retail",
    "Manufacturing",
    "Healthcare",
    "Energy",
    "Technology",
    "Public Sector",
    "Media",
    "Logistics",
]
COUNTRIES = {"US": "United States", "UK": "United Kingdom", "DE": "Germany"}
NAME_A = [
    "Northwind",
    "Contoso",
    "Fabrikam",
    "Litware",
    "Adventure",
    "Proseware",
    "Tailspin",
    "Wingtip",
    "Woodgrove",
    "Lucerne",
    "Alpine",
    "Blue",
    "Yonder",
    "Coho",
    "Fourth",
    "Margie's",
    "Humongous",
    "Trey",
    "Wide",
    "World",
    "Datum",
    "Graphic",
    "Lamna",
    "Southridge",
    "Relecloud",
    "Munson's",
    "Olympia",
    "Consolidated",
    "Baltic",
    "Rhine",
    "Thames",
    "Hudson",
    "Cascade",
    "Summit",
    "Pioneer",
    "Granite",
    "Harbor",
    "Meridian",
    "Aurora",
    "Beacon",
    "Crescent",
    "Evergreen",
    "Falcon",
]
NAME_B = [
    "Traders",
    "Holdings",
    "Industries",
    "Logistics",
    "Energy",
    "Foods",
    "Bank",
    "Insurance",
    "Health",
    "Systems",
    "Retail",
    "Motors",
    "Media",
    "Partners",
    "Capital",
    "Pharma",
    "Airlines",
    "Utilities",
    "Telecom",
    "Group",
]
SUFFIX = {"US": ["", " Inc.", " Corp.", " LLC"], "UK": ["", " Ltd", " plc"], "DE": ["", " GmbH", " AG"]}
TITLES = [
    "Transformation",
    "Operating Model Review",
    "Cloud Migration",
    "Cost Reduction",
    "Due Diligence",
    "Data Platform",
    "Org Design",
    "Finance Process Redesign",
    "Pricing Strategy",
    "Change Programme",
    "ERP Selection",
    "Growth Strategy",
]
INTERNAL = ["Internal - Practice Development", "Internal - Business Development", "Internal - Training"]
STATUS = {
    "Active": {"key": 310, "message": "Active", "color": "green"},
    "On Hold": {"key": 320, "message": "On Hold", "color": "yellow"},
    "Completed": {"key": 410, "message": "Completed", "color": "grey"},
    "Cancelled": {"key": 420, "message": "Cancelled", "color": "grey"},
}
NO_DAY = -1


@dataclass
class Portfolio:
    """Accounts, projects and assignments. Projects 0..n_client-1 are client work, the rest internal."""

    acc_name: list[str]
    acc_entity: np.ndarray
    acc_currency: list[str]
    acc_industry: list[str]
    acc_owner: np.ndarray  # employee index (a leader)
    acc_created: np.ndarray  # day
    n_client: int
    p_account: np.ndarray  # -1 for internal
    p_entity: np.ndarray
    p_practice: np.ndarray
    p_method: np.ndarray  # index into METHODS, -1 internal
    p_title: list[str]
    p_code: list[str]
    p_currency: list[str]
    p_start: np.ndarray
    p_orig_end: np.ndarray
    p_end: np.ndarray  # final contract end (after any amendment)
    p_amend: np.ndarray  # amendment day or NO_DAY
    p_hold: np.ndarray  # day it went on hold or NO_DAY
    p_done: np.ndarray  # day it was completed/cancelled or NO_DAY
    p_cancelled: np.ndarray  # bool
    p_signed: np.ndarray  # day the contract was signed (opportunity won)
    p_lead: np.ndarray  # employee index
    p_budget_hours: np.ndarray
    p_rate_uplift: np.ndarray  # amendment rate increase factor
    p_rate_level: np.ndarray  # client-specific discount on standard rates
    a_emp: np.ndarray
    a_proj: np.ndarray
    a_start: np.ndarray
    a_end: np.ndarray
    a_hpw: np.ndarray
    a_lead: np.ndarray  # bool: the project lead's assignment
    budget_amount: np.ndarray = None  # type: ignore[assignment]  # contract value in project currency
    monthly_fee: np.ndarray = None  # type: ignore[assignment]  # retainers only

    @property
    def n_projects(self) -> int:
        return len(self.p_code)


def _company_names(rng, n: int, entity: np.ndarray) -> list[str]:
    from sandbox.generate.common import ENTITY_CODES

    names: list[str] = []
    seen: set[str] = set()
    for i in range(n):
        code = ENTITY_CODES[int(entity[i])]
        for attempt in range(50):
            base = f"{NAME_A[rng.integers(len(NAME_A))]} {NAME_B[rng.integers(len(NAME_B))]}"
            if attempt > 10:
                base = f"{base} {code}{attempt}"
            if base not in seen:
                break
        seen.add(base)
        names.append(base + SUFFIX[code][int(rng.integers(len(SUFFIX[code])))])
    return names


def build_portfolio(cal: Calendar, firm: Firm, accounts_per: float, seed: int) -> Portfolio:
    """Accounts and projects per legal entity, then a staffing walk per consultant."""
    rng = rng_for(seed, "portfolio")
    n_acc = max(6, round(firm.n / accounts_per))
    acc_entity = np.sort(rng.choice(3, size=n_acc, p=[0.5, 0.3, 0.2]))
    acc_entity[:3] = [0, 1, 2]
    acc_entity = np.sort(acc_entity)
    acc_currency = [CURRENCIES[e] if rng.random() < 0.85 else CURRENCIES[(e + 1) % 3] for e in acc_entity]
    leaders = [np.flatnonzero((firm.entity == e) & (firm.grade >= 5)) for e in range(3)]
    leaders = [
        lead if lead.size else np.flatnonzero((firm.entity == e) & (firm.grade >= LEAD_GRADE))
        for e, lead in enumerate(leaders)
    ]
    acc_owner = np.array([leaders[e][rng.integers(leaders[e].size)] for e in acc_entity])

    # projects: enough that each consultant is on one at a time in teams of about four
    span = cal.horizon_day - cal.start_day
    p_entity_l, p_start_l, p_len_l = [], [], []
    for ent in range(3):
        staff = int(((firm.entity == ent) & (firm.grade < LEAD_GRADE)).sum())
        mean_len = min(200, max(75, span * 0.6))
        concurrent = max(2.0, staff * 0.9 / 3.5)
        count = max(3, round(concurrent * (span + mean_len) / mean_len))
        starts = rng.integers(cal.start_day - int(mean_len * 0.8), cal.horizon_day - 20, size=count)
        lengths = np.clip(rng.gamma(4.0, mean_len / 4.0, size=count), 45, 540).astype(np.int64)
        # the first project of each entity starts before the history so work exists from day one
        starts[0] = cal.start_day - 20
        lengths[0] = max(int(lengths[0]), span + 10)
        p_entity_l.append(np.full(count, ent))
        p_start_l.append(starts)
        p_len_l.append(lengths)
    p_entity = np.concatenate(p_entity_l)
    p_start = np.concatenate(p_start_l)
    p_len = np.concatenate(p_len_l)
    order = np.lexsort((p_start, p_entity))
    p_entity, p_start, p_len = p_entity[order], p_start[order], p_len[order]
    n_client = p_entity.size
    p_method = rng.choice(4, size=n_client, p=METHOD_SHARE)
    p_method[:4] = [0, 1, 2, 3]  # every billing method exists even in the tiniest world
    p_account = np.empty(n_client, dtype=np.int64)
    for i in range(n_client):
        pool = np.flatnonzero(acc_entity == p_entity[i])
        # a few accounts hold most of the work, as in life
        weights = 1.0 / (1 + np.arange(pool.size)) ** 0.6
        p_account[i] = pool[rng.choice(pool.size, p=weights / weights.sum())]
    p_practice = rng.integers(0, len(PRACTICES), size=n_client)

    amended = (rng.random(n_client) < 0.3) & (p_len > 90)
    amended[:2] = p_len[:2] > 90  # both kinds of contract change exist in every world
    ext = rng.integers(30, 100, size=n_client)
    p_orig_end = p_start + np.where(amended, np.maximum(p_len - ext, 60), p_len)
    p_end = np.where(amended, p_orig_end + ext, p_orig_end)
    p_amend = np.where(
        amended,
        p_start + ((p_orig_end - p_start) * rng.uniform(0.45, 0.85, size=n_client)).astype(int),
        NO_DAY,
    )
    p_signed = p_start - rng.integers(10, 40, size=n_client)
    p_cancelled = (rng.random(n_client) < 0.01) & (p_start > cal.start_day + 20)
    p_done = np.where(p_cancelled, p_start - 3, p_end + rng.integers(3, 12, size=n_client))
    p_done = np.where(p_done <= cal.horizon_day, p_done, NO_DAY)
    p_hold = np.full(n_client, NO_DAY)

    lead_pool = [np.flatnonzero((firm.entity == e) & (firm.grade >= LEAD_GRADE)) for e in range(3)]
    p_lead = np.empty(n_client, dtype=np.int64)
    load: dict[int, int] = {}
    for i in range(n_client):
        pool = lead_pool[int(p_entity[i])]
        alive = pool[(firm.hire_day[pool] <= p_start[i]) & (firm.term_day[pool] >= p_end[i])]
        alive = alive if alive.size else pool
        loads = np.array([load.get(int(e), 0) for e in alive]) + rng.random(alive.size)
        p_lead[i] = alive[int(np.argmin(loads))]
        load[int(p_lead[i])] = load.get(int(p_lead[i]), 0) + 1

    # internal projects: three per legal entity, open for the whole history
    n_int = 9
    int_entity = np.repeat(np.arange(3), 3)
    acc_names = _company_names(rng, n_acc, acc_entity)
    titles = [
        f"{acc_names[p_account[i]].split(' ')[0]} {TITLES[rng.integers(len(TITLES))]}"
        for i in range(n_client)
    ]
    from sandbox.generate.common import ENTITY_CODES

    titles += [f"{INTERNAL[k % 3]} ({ENTITY_CODES[int_entity[k]]})" for k in range(n_int)]
    codes = [f"PRJ-{101 + i:05d}" for i in range(n_client)]
    codes += [f"INT-{ENTITY_CODES[int_entity[k]]}-{k % 3 + 1:02d}" for k in range(n_int)]

    def cat(client, internal):
        return np.concatenate([client, internal])

    portfolio = Portfolio(
        acc_name=acc_names,
        acc_entity=acc_entity,
        acc_currency=acc_currency,
        acc_industry=[INDUSTRIES[i] for i in rng.integers(0, len(INDUSTRIES), size=n_acc)],
        acc_owner=acc_owner,
        acc_created=np.full(n_acc, cal.start_day - 400),
        n_client=n_client,
        p_account=cat(p_account, np.full(n_int, -1)),
        p_entity=cat(p_entity, int_entity),
        p_practice=cat(p_practice, np.arange(n_int) % len(PRACTICES)),
        p_method=cat(p_method, np.full(n_int, -1)),
        p_title=titles,
        p_code=codes,
        p_currency=[acc_currency[a] for a in p_account] + [CURRENCIES[e] for e in int_entity],
        p_start=cat(p_start, np.full(n_int, cal.start_day - 700)),
        p_orig_end=cat(p_orig_end, np.full(n_int, cal.horizon_day + 3650)),
        p_end=cat(p_end, np.full(n_int, cal.horizon_day + 3650)),
        p_amend=cat(p_amend, np.full(n_int, NO_DAY)),
        p_hold=cat(p_hold, np.full(n_int, NO_DAY)),
        p_done=cat(p_done, np.full(n_int, NO_DAY)),
        p_cancelled=cat(p_cancelled, np.zeros(n_int, dtype=bool)),
        p_signed=cat(p_signed, np.full(n_int, cal.start_day - 710)),
        p_lead=cat(p_lead, np.array([lead_pool[e][0] for e in int_entity])),
        p_budget_hours=np.zeros(n_client + n_int),
        p_rate_uplift=cat(rng.uniform(1.03, 1.08, size=n_client), np.ones(n_int)),
        p_rate_level=cat(rng.uniform(0.85, 1.05, size=n_client), np.ones(n_int)),
        a_emp=np.zeros(0, dtype=np.int64),
        a_proj=np.zeros(0, dtype=np.int64),
        a_start=np.zeros(0, dtype=np.int64),
        a_end=np.zeros(0, dtype=np.int64),
        a_hpw=np.zeros(0),
        a_lead=np.zeros(0, dtype=bool),
    )
    _plant_on_hold(cal, portfolio, rng)
    _staff(cal, firm, portfolio, rng)
    return portfolio


def _plant_on_hold(cal: Calendar, pf: Portfolio, rng) -> None:
    """A few running projects go on hold before the clock and stay there; the team logs on for a
    few days (time on an inactive project)."""
    clock_day = cal.clock_day
    running = np.flatnonzero(
        (pf.p_start[: pf.n_client] < clock_day - 40)
        & (pf.p_end[: pf.n_client] > clock_day + 10)
        & ~pf.p_cancelled[: pf.n_client]
    )
    count = max(2, round(pf.n_client * 0.015))
    chosen = rng.choice(running, size=min(count, running.size), replace=False) if running.size else []
    for p in np.sort(np.asarray(chosen, dtype=np.int64)):
        hold = max(int(pf.p_start[p]) + 10, clock_day - int(rng.integers(10, 30)))
        pf.p_hold[p] = hold
        pf.p_done[p] = NO_DAY


def _staff(cal: Calendar, firm: Firm, pf: Portfolio, rng) -> None:
    """Each consultant walks from project to project; each project has its lead on it throughout."""
    n_client = pf.n_client
    open_from = pf.p_start[:n_client]
    open_to = np.where(pf.p_hold[:n_client] != NO_DAY, pf.p_hold[:n_client] + 8, pf.p_end[:n_client])
    usable = ~pf.p_cancelled[:n_client]
    emp_l, proj_l, st_l, en_l, hpw_l, lead_l = [], [], [], [], [], []
    by_entity = [np.flatnonzero((pf.p_entity[:n_client] == e) & usable) for e in range(3)]
    for e in np.flatnonzero(firm.grade < LEAD_GRADE):
        ent = int(firm.entity[e])
        pool = by_entity[ent]
        t = int(max(int(firm.hire_day[e]), cal.start_day))
        stop = int(min(int(firm.term_day[e]), cal.horizon_day))
        share = min(0.95, (TARGETS[firm.grade[e]] + firm.util_bias[e]) / 0.92)
        hpw = round(firm.weekly_hours[e] * share * 4) / 4
        while t < stop:
            live = pool[(open_from[pool] <= t + 10) & (open_to[pool] >= t + 20)]
            if live.size == 0:
                t += 10
                continue
            same = firm.practice[e] == pf.p_practice[live]
            weights = np.where(same, 3.0, 1.0)
            p = int(live[rng.choice(live.size, p=weights / weights.sum())])
            start = max(t, int(open_from[p]))
            end = min(int(open_to[p]), stop, start + int(rng.integers(30, 200)))
            if pf.p_hold[p] != NO_DAY:
                end = min(end, int(pf.p_hold[p]) + int(rng.integers(3, 9)))
            if end > start:
                emp_l.append(int(e))
                proj_l.append(p)
                st_l.append(start)
                en_l.append(end)
                hpw_l.append(hpw)
                lead_l.append(False)
            t = max(end, start) + 1 + int(rng.choice([0, 0, 0, 1, 3, 7, 14]))
    lead_hours = {4: 16.0, 5: 12.0, 6: 7.0}
    for p in range(n_client):
        if pf.p_cancelled[p]:
            continue
        lead = int(pf.p_lead[p])
        start = max(int(pf.p_start[p]), int(firm.hire_day[lead]))
        end = min(int(open_to[p]) if pf.p_hold[p] == NO_DAY else int(pf.p_hold[p]), int(firm.term_day[lead]))
        if end > start:
            emp_l.append(lead)
            proj_l.append(p)
            st_l.append(start)
            en_l.append(end)
            hpw_l.append(lead_hours[int(firm.grade[lead])])
            lead_l.append(True)
    pf.a_emp = np.array(emp_l, dtype=np.int64)
    pf.a_proj = np.array(proj_l, dtype=np.int64)
    pf.a_start = np.array(st_l, dtype=np.int64)
    pf.a_end = np.array(en_l, dtype=np.int64)
    pf.a_hpw = np.array(hpw_l, dtype=np.float64)
    pf.a_lead = np.array(lead_l, dtype=bool)
    # budget: the planned hours of the team with some contingency
    weeks = np.maximum(pf.a_end - pf.a_start, 7) / 7.0
    planned = np.bincount(pf.a_proj, weights=pf.a_hpw * weeks, minlength=pf.n_projects)
    contingency = rng.uniform(0.95, 1.25, size=pf.n_projects)
    pf.p_budget_hours = np.maximum(np.round(planned * contingency / 10) * 10, 40.0)
    pf.p_budget_hours[n_client:] = 0.0
    from sandbox.generate.common import round_cents

    currency = [pf.p_currency[p] for p in pf.a_proj]
    value = role_rate(firm.grade[pf.a_emp], currency, pf.p_rate_level[pf.a_proj]) * pf.a_hpw * weeks
    amount = np.bincount(pf.a_proj, weights=value, minlength=pf.n_projects) * contingency
    pf.budget_amount = round_cents(np.maximum(np.round(amount / 100) * 100, 1000.0))
    pf.budget_amount[n_client:] = 0.0
    months = np.maximum((pf.p_end - pf.p_start) / 30.4, 1.0)
    pf.monthly_fee = round_cents(np.maximum(np.round(pf.budget_amount / months / 100) * 100, 1000.0))
    pf.monthly_fee[n_client:] = 0.0


def role_rate(grade: np.ndarray, currency: list[str] | np.ndarray, level: np.ndarray) -> np.ndarray:
    """Bill rate per hour: the grade's standard rate in local price level, whole currency units."""
    from sandbox.generate.firm import PRICE_FACTOR

    factor = np.array([PRICE_FACTOR[c] for c in currency])
    std = np.array([GRADES[g][3] for g in np.asarray(grade)])
    return np.round(std * factor * level / 5) * 5
