"""HR / payroll sources: employees, cost rates, time off, holidays and the drop's delivery plan.

HR keeps full history (not collapsed): the drop folder delivers snapshots as of past dates, and a
snapshot must not show a termination that was only entered later.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from sandbox.generate.common import (
    DAY,
    ENTITY_CODES,
    HOUR,
    Calendar,
    date_col,
    month_end,
    rng_for,
    ts_col,
    valid_from,
)
from sandbox.generate.firm import GRADE_NAMES, OFF_TYPES, PRACTICES, STILL_EMPLOYED, Firm

COST_CENTRE = {"Strategy": "STR", "Technology": "TEC", "Finance Advisory": "FIN", "People & Change": "PPL"}


def build_hr(cal: Calendar, firm: Firm, seed: int) -> dict[str, pl.DataFrame]:
    """Entity name → version frame (`_valid_from` set, sorted by key and time)."""
    out: dict[str, pl.DataFrame] = {}
    n = firm.n
    entity = [ENTITY_CODES[e] for e in firm.entity]
    practice = [PRACTICES[p] for p in firm.practice]
    base = pl.DataFrame(
        {
            "employee_id": firm.employee_id,
            "email": firm.email,
            "first_name": firm.first_name,
            "last_name": firm.last_name,
            "grade": pl.Series(GRADE_NAMES).gather(firm.grade),
            "practice": practice,
            "region": firm.region,
            "legal_entity": entity,
            "cost_centre": [f"{e}-{COST_CENTRE[p]}" for e, p in zip(entity, practice, strict=True)],
            "hire_date": date_col(firm.hire_day, "hire_date"),
            "weekly_standard_hours": firm.weekly_hours,
            "manager_id": [firm.employee_id[m] if m >= 0 else None for m in firm.manager],
        }
    )
    entered = (firm.hire_day - 14) * DAY + 10 * HOUR
    leaves = firm.term_day < STILL_EMPLOYED
    notice = (firm.term_day - 30) * DAY + 10 * HOUR
    hired = base.with_columns(date_col(np.full(n, -1), "termination_date"), pl.Series("_t", entered))
    left = base.with_columns(date_col(firm.term_day, "termination_date"), pl.Series("_t", notice)).filter(
        pl.Series(leaves)
    )
    out["employees"] = _finish(pl.concat([hired, left]), ["employee_id"], cal)

    cost = pl.DataFrame(
        {
            "employee_id": pl.Series(firm.employee_id).gather(firm.cost_emp),
            "effective_from": date_col(firm.cost_from, "effective_from"),
            "hourly_cost": firm.cost_rate,
            "currency": pl.Series([["USD", "GBP", "EUR"][e] for e in range(3)]).gather(
                firm.entity[firm.cost_emp]
            ),
            # the first rate is entered with the hire, raises two weeks before they apply
            "_t": np.where(
                firm.cost_from == firm.hire_day[firm.cost_emp],
                entered[firm.cost_emp],
                (firm.cost_from - 14) * DAY + 10 * HOUR,
            ),
        }
    )
    out["cost_rates"] = _finish(cost, ["employee_id", "effective_from"], cal)

    off = pl.DataFrame(
        {
            "employee_id": pl.Series(firm.employee_id).gather(firm.off_emp),
            "date": date_col(firm.off_day, "date"),
            "hours": firm.off_hours,
            "type": pl.Series(OFF_TYPES).gather(firm.off_type),
            "_t": np.maximum(firm.off_booked, entered[firm.off_emp]),
        }
    )
    out["time_off"] = _finish(off, ["employee_id", "date"], cal)

    hol = []
    for code in ENTITY_CODES:
        for day, name in sorted(cal.holidays[code].items()):
            if cal.start_day - 400 <= day <= cal.horizon_day + 400:
                hol.append((code, day, name))
    holidays = pl.DataFrame(hol, schema=["legal_entity", "day", "name"], orient="row")
    out["holidays"] = _finish(
        holidays.select(
            "legal_entity",
            date_col(holidays["day"].to_numpy(), "date"),
            "name",
            pl.lit((cal.start_day - 400) * DAY).alias("_t"),
        ),
        ["legal_entity", "date"],
        cal,
    )
    out["deliveries"] = _deliveries(cal, seed)
    return out


def _finish(frame: pl.DataFrame, key: list[str], cal: Calendar) -> pl.DataFrame:
    frame = frame.filter(pl.col("_t") <= cal.horizon).sort([*key, "_t"], maintain_order=True)
    return frame.with_columns(valid_from(frame["_t"])).drop("_t")


def _deliveries(cal: Calendar, seed: int) -> pl.DataFrame:
    """Monthly snapshots before the clock, daily from two weeks before it; a few late or resent."""
    rng = rng_for(seed, "hr-deliveries")
    daily_from = cal.clock_day - 14
    ends = np.unique(month_end(np.arange(cal.start_day, daily_from)))
    snapshots = np.concatenate([ends[ends < daily_from], np.arange(daily_from, cal.horizon_day + 1)])
    delivered = (snapshots + 1) * DAY + 6 * HOUR
    late = rng.random(snapshots.size) < 0.06
    late[: min(2, late.size)] = False
    late_idx = np.flatnonzero(snapshots >= daily_from)
    if late_idx.size >= 4 and late.sum() < 2:
        late[late_idx[[1, 3]]] = True
    delivered = np.where(late, delivered + rng.integers(2, 5, size=snapshots.size) * DAY, delivered)
    kind = np.where(late, "late", "on_time")
    resend = np.sort(rng.choice(np.flatnonzero(~late), size=min(2, int((~late).sum())), replace=False))
    snap = np.concatenate([snapshots, snapshots[resend]])
    when = np.concatenate(
        [delivered, delivered[resend] + rng.integers(1, 3, size=resend.size) * DAY + 2 * HOUR]
    )
    kinds = np.concatenate([kind, np.full(resend.size, "resent")])
    keep = when <= cal.horizon
    frame = pl.DataFrame(
        {
            "snapshot_date": date_col(snap[keep], "snapshot_date"),
            "delivered_at": ts_col(when[keep], "delivered_at"),
            "kind": kinds[keep],
            "_t": when[keep],
        }
    )
    return _finish(frame, ["snapshot_date", "delivered_at"], cal)
