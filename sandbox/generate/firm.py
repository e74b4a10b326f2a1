"""The firm itself: grades, practices, employees, cost rates, time off and who works when."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sandbox.generate.common import ENTITY_CODES, Calendar, rng_for, round_cents, weekday

# grade, billable-utilisation target, hourly cost (USD), standard bill rate (USD), headcount share
GRADES: list[tuple[str, float, float, int, float]] = [
    ("Analyst", 0.80, 48.0, 160, 0.22),
    ("Consultant", 0.75, 62.0, 210, 0.25),
    ("Senior Consultant", 0.72, 78.0, 260, 0.20),
    ("Manager", 0.65, 98.0, 310, 0.14),
    ("Senior Manager", 0.55, 118.0, 360, 0.09),
    ("Director", 0.40, 142.0, 430, 0.06),
    ("Partner", 0.25, 185.0, 520, 0.04),
]
GRADE_NAMES = [g[0] for g in GRADES]
TARGETS = np.array([g[1] for g in GRADES])
PRACTICES = ["Strategy", "Technology", "Finance Advisory", "People & Change"]
REGIONS = {"US": ["US East", "US West"], "UK": ["UK & Ireland"], "DE": ["DACH"]}
# Price level of each legal entity's currency relative to USD (costs and rates are local).
PRICE_FACTOR = {"USD": 1.0, "GBP": 0.8, "EUR": 0.92}
ENTITY_SHARE = [0.5, 0.3, 0.2]
LEAD_GRADE = 4  # Senior Manager and above lead projects

FIRST = [
    "James",
    "Mary",
    "John",
    "Patricia",
    "Robert",
    "Jennifer",
    "Michael",
    "Linda",
    "William",
    "Elizabeth",
    "David",
    "Barbara",
    "Richard",
    "Susan",
    "Joseph",
    "Jessica",
    "Thomas",
    "Sarah",
    "Charles",
    "Karen",
    "Daniel",
    "Nancy",
    "Matthew",
    "Lisa",
    "Anthony",
    "Betty",
    "Mark",
    "Margaret",
    "Paul",
    "Sandra",
    "Steven",
    "Ashley",
    "Andrew",
    "Kimberly",
    "Joshua",
    "Emily",
    "Oliver",
    "Amelia",
    "Harry",
    "Isla",
    "Jack",
    "Ava",
    "Lukas",
    "Mia",
    "Leon",
    "Hannah",
    "Finn",
    "Emma",
    "Paul",
    "Lena",
    "Noah",
    "Sophie",
    "Elias",
    "Marie",
    "Felix",
    "Anna",
    "Priya",
    "Arjun",
    "Wei",
    "Mei",
    "Omar",
    "Fatima",
]
LAST = [
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Rodriguez",
    "Martinez",
    "Hernandez",
    "Lopez",
    "Wilson",
    "Anderson",
    "Thomas",
    "Taylor",
    "Moore",
    "Jackson",
    "Martin",
    "Lee",
    "Thompson",
    "White",
    "Harris",
    "Clark",
    "Lewis",
    "Robinson",
    "Walker",
    "Young",
    "Allen",
    "King",
    "Wright",
    "Scott",
    "Green",
    "Baker",
    "Adams",
    "Nelson",
    "Hill",
    "Campbell",
    "Mitchell",
    "Roberts",
    "Carter",
    "Evans",
    "Turner",
    "Parker",
    "Collins",
    "Edwards",
    "Stewart",
    "Morris",
    "Murphy",
    "Cook",
    "Rogers",
    "Morgan",
    "Cooper",
    "Peterson",
    "Reed",
    "Bailey",
    "Mueller",
    "Schmidt",
    "Schneider",
    "Fischer",
    "Weber",
    "Meyer",
    "Wagner",
    "Becker",
    "Schulz",
    "Hoffmann",
    "Koch",
    "Richter",
    "Patel",
    "Khan",
    "Singh",
    "Chen",
    "Wang",
    "Nguyen",
    "Kowalski",
    "Novak",
    "Rossi",
    "Silva",
]


@dataclass
class Firm:
    """Employees as parallel arrays (index = position), plus their cost rates and time off."""

    n: int
    employee_id: list[str]
    first_name: list[str]
    last_name: list[str]
    email: list[str]
    entity: np.ndarray  # index into LEGAL_ENTITIES
    practice: np.ndarray
    region: list[str]
    grade: np.ndarray
    hire_day: np.ndarray
    term_day: np.ndarray  # large sentinel when still employed
    weekly_hours: np.ndarray
    manager: np.ndarray  # index or -1
    daily_submitter: np.ndarray  # submits each day rather than each Friday
    util_bias: np.ndarray  # personal deviation from the grade target
    cost_emp: np.ndarray  # cost-rate rows: employee index
    cost_from: np.ndarray  # effective-from day
    cost_rate: np.ndarray
    off_emp: np.ndarray  # time-off rows
    off_day: np.ndarray
    off_hours: np.ndarray
    off_type: np.ndarray  # index into OFF_TYPES
    off_booked: np.ndarray  # second at which it was recorded
    works: np.ndarray  # bool [employee, day - start]: a working day of employment, not off

    @property
    def daily_hours(self) -> np.ndarray:
        return self.weekly_hours / 5.0

    def name(self, i: int) -> str:
        return f"{self.first_name[i]} {self.last_name[i]}"


OFF_TYPES = ["vacation", "sick", "parental", "other"]
STILL_EMPLOYED = 10**7


def build_firm(cal: Calendar, n: int, seed: int) -> Firm:
    """Draw the employees and everything HR knows about them."""
    rng = rng_for(seed, "firm")
    entity = rng.choice(3, size=n, p=ENTITY_SHARE)
    practice = rng.integers(0, len(PRACTICES), size=n)
    grade = rng.choice(len(GRADES), size=n, p=[g[4] for g in GRADES])
    # Every legal entity needs someone to lead its projects, even in a tiny world.
    for ent in range(3):
        members = np.flatnonzero(entity == ent)
        if members.size and not (grade[members] >= LEAD_GRADE).any():
            grade[members[0]] = 6
    span = cal.horizon_day - cal.start_day
    joins_late = rng.random(n) < 0.18
    hire = np.where(
        joins_late,
        cal.start_day + rng.integers(5, max(span - 20, 6), size=n),
        cal.start_day - rng.integers(30, 3000, size=n),
    )
    hire = np.where(grade >= LEAD_GRADE, np.minimum(hire, cal.start_day - 60), hire)
    leaves = (rng.random(n) < 0.12 * max(1.0, span / 365)) & (grade < 6)
    term = np.where(
        leaves,
        np.maximum(hire + 90, cal.start_day + rng.integers(10, span + 30, size=n)),
        STILL_EMPLOYED,
    )
    part_time = rng.random(n) < 0.1
    standard = np.where(entity == 1, 37.5, 40.0)
    weekly = np.where(part_time, rng.choice([20.0, 24.0, 28.0, 32.0], size=n), standard)

    first = [FIRST[i] for i in rng.integers(0, len(FIRST), size=n)]
    last = [LAST[i] for i in rng.integers(0, len(LAST), size=n)]
    seen: dict[str, int] = {}
    email = []
    for f, la in zip(first, last, strict=True):
        base = f"{f}.{la}".lower()
        seen[base] = seen.get(base, 0) + 1
        suffix = "" if seen[base] == 1 else str(seen[base])
        email.append(f"{base}{suffix}@billable-partners.example")
    regions = [
        REGIONS[ENTITY_CODES[e]][int(r) % len(REGIONS[ENTITY_CODES[e]])]
        for e, r in zip(entity.tolist(), rng.integers(0, 2, size=n).tolist(), strict=True)
    ]

    manager = np.full(n, -1, dtype=np.int64)
    for ent in range(3):
        for g in range(len(GRADES) - 1):
            juniors = np.flatnonzero((entity == ent) & (grade == g))
            seniors = np.flatnonzero((entity == ent) & (grade > g) & (grade >= max(g + 1, 3)))
            if juniors.size and seniors.size:
                manager[juniors] = seniors[rng.integers(0, seniors.size, size=juniors.size)]
        partners = np.flatnonzero((entity == ent) & (grade == 6))
        if partners.size > 1:
            manager[partners[1:]] = partners[0]

    cost_emp, cost_from, cost_rate = _cost_rates(cal, rng, entity, grade, hire)
    off = _time_off(cal, rng, entity, hire, term, weekly)
    works = _works(cal, entity, hire, term, off[0], off[1])
    return Firm(
        n=n,
        employee_id=[f"E{i + 1:05d}" for i in range(n)],
        first_name=first,
        last_name=last,
        email=email,
        entity=entity,
        practice=practice,
        region=regions,
        grade=grade,
        hire_day=hire,
        term_day=term,
        weekly_hours=weekly,
        manager=manager,
        daily_submitter=rng.random(n) < 0.65,
        util_bias=rng.normal(0.0, 0.05, size=n),
        cost_emp=cost_emp,
        cost_from=cost_from,
        cost_rate=cost_rate,
        off_emp=off[0],
        off_day=off[1],
        off_hours=off[2],
        off_type=off[3],
        off_booked=off[4],
        works=works,
    )


def _cost_rates(cal: Calendar, rng, entity, grade, hire) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A starting cost rate at hire, then a raise every 1 April at least six months after hire."""
    from sandbox.generate.common import CURRENCIES, day_to_date, to_day

    n = entity.size
    factor = np.array([PRICE_FACTOR[CURRENCIES[e]] for e in entity])
    base = np.array([GRADES[g][2] for g in grade]) * factor * rng.uniform(0.9, 1.1, size=n)
    first_year = day_to_date(cal.start_day).year - 1
    last_year = day_to_date(cal.horizon_day).year
    emps, froms, rates = [np.arange(n)], [hire.astype(np.int64)], [base]
    current = base.copy()
    for year in range(first_year, last_year + 1):
        april = to_day(day_to_date(0).replace(year=year, month=4, day=1))
        eligible = hire + 180 <= april
        current = np.where(eligible, current * (1 + rng.uniform(0.02, 0.06, size=n)), current)
        if april + 0 <= cal.horizon_day + 14 and april >= cal.start_day - 400:
            idx = np.flatnonzero(eligible)
            emps.append(idx)
            froms.append(np.full(idx.size, april, dtype=np.int64))
            rates.append(current[idx])
    emp = np.concatenate(emps)
    frm = np.concatenate(froms)
    rate = round_cents(np.concatenate(rates))
    order = np.lexsort((frm, emp))
    return emp[order], frm[order], rate[order]


def _time_off(cal: Calendar, rng, entity, hire, term, weekly):
    """Vacation in blocks booked weeks ahead, sick days recorded on the day, rare parental leave."""
    from sandbox.generate.common import DAY, HOUR

    n = entity.size
    first, last = cal.start_day - 30, cal.horizon_day + 60
    years = (last - first) / 365
    blocks = rng.poisson(5 * years, size=n)
    b_emp = np.repeat(np.arange(n), blocks)
    b_start = rng.integers(first, last, size=b_emp.size)
    b_len = rng.choice([1, 1, 2, 3, 4, 7, 11, 14], size=b_emp.size)
    kind = np.zeros(b_emp.size, dtype=np.int64)
    parental = rng.random(n) < 0.02
    p_emp = np.flatnonzero(parental)
    b_emp = np.concatenate([b_emp, p_emp])
    b_start = np.concatenate([b_start, rng.integers(first, last, size=p_emp.size)])
    b_len = np.concatenate([b_len, np.full(p_emp.size, 42)])
    kind = np.concatenate([kind, np.full(p_emp.size, 2)])
    booked_ahead = np.where(kind == 2, 60, rng.integers(10, 75, size=kind.size))
    rows = np.repeat(np.arange(b_emp.size), b_len)
    offset = np.arange(rows.size) - np.repeat(np.cumsum(b_len) - b_len, b_len)
    v_emp, v_day = b_emp[rows], b_start[rows] + offset
    v_kind = kind[rows]
    v_booked = (b_start[rows] - booked_ahead[rows]) * DAY + 10 * HOUR
    # sick and other days: scattered single days, recorded that morning
    span_days = np.arange(first, last)
    s_count = rng.poisson(0.02 * span_days.size, size=n)
    s_emp = np.repeat(np.arange(n), s_count)
    s_day = rng.integers(first, last, size=s_emp.size)
    s_kind = np.where(rng.random(s_emp.size) < 0.9, 1, 3)
    s_booked = s_day * DAY + 9 * HOUR
    emp = np.concatenate([v_emp, s_emp])
    day = np.concatenate([v_day, s_day])
    typ = np.concatenate([v_kind, s_kind])
    booked = np.concatenate([v_booked, s_booked])
    keep = (weekday(day) < 5) & (day >= hire[emp]) & (day <= term[emp]) & (day <= last)
    keep &= ~_holiday_of(cal, entity[emp], day)
    emp, day, typ, booked = emp[keep], day[keep], typ[keep], booked[keep]
    # one row per employee and day: the first drawn wins (lexsort keeps draw order stable)
    order = np.lexsort((np.arange(emp.size), day, emp))
    emp, day, typ, booked = emp[order], day[order], typ[order], booked[order]
    first_of = np.ones(emp.size, dtype=bool)
    first_of[1:] = (emp[1:] != emp[:-1]) | (day[1:] != day[:-1])
    emp, day, typ, booked = emp[first_of], day[first_of], typ[first_of], booked[first_of]
    hours = weekly[emp] / 5.0
    return emp, day, hours, typ, booked


def _holiday_of(cal: Calendar, entity_idx: np.ndarray, days: np.ndarray) -> np.ndarray:
    out = np.zeros(days.size, dtype=bool)
    for ent in range(3):
        sel = entity_idx == ent
        out[sel] = cal.holiday_mask(ent, days[sel])
    return out


def _works(cal: Calendar, entity, hire, term, off_emp, off_day) -> np.ndarray:
    days = np.arange(cal.start_day, cal.horizon_day + 1)
    weekdays = weekday(days) < 5
    holiday = np.stack([cal.holiday_mask(ent, days) for ent in range(3)])
    works = weekdays[None, :] & ~holiday[entity]
    works &= (days[None, :] >= hire[:, None]) & (days[None, :] <= term[:, None])
    inside = (off_day >= cal.start_day) & (off_day <= cal.horizon_day)
    works[off_emp[inside], off_day[inside] - cal.start_day] = False
    return works
