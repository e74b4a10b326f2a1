"""Harvest time entries, vectorised: assignments expand into days, the rest of each working day is
internal time, and each entry gets its lifecycle (created, submitted, approved …) as event times."""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from sandbox.generate.common import DAY, HOUR, NEVER, Calendar, Keyed, add_weekdays, record_key, weekday
from sandbox.generate.firm import Firm
from sandbox.generate.portfolio import Portfolio

TASKS = [
    "Delivery",
    "Project Management",
    "Workshop",
    "Analysis",
    "Internal",
    "Business Development",
    "Training",
]
NOTES = [
    [
        "Client deliverable drafting",
        "Stakeholder interviews",
        "Model build",
        "Review of findings",
        "Implementation support",
        "Data analysis",
    ],
    ["Status meeting", "Weekly steering committee", "Planning", "Risk review"],
    ["Client workshop", "Workshop preparation", "Workshop follow-up"],
    ["Current-state analysis", "Benchmarking", "Requirements analysis"],
    ["Practice meeting", "Knowledge management", "Internal admin"],
    ["Proposal writing", "Pitch preparation", "Client lunch"],
    ["Training course", "Certification study", "Onboarding"],
]
PLANT_NONE, PLANT_DUP, PLANT_INVALID, PLANT_OUTSIDE, PLANT_UNKNOWN_PROJECT, PLANT_UNKNOWN_USER = range(6)
PLANT_NEVER, PLANT_CLOSED, PLANT_LATE_FIX = 6, 7, 8


@dataclass
class Entries:
    """One array per attribute; index = entry. `user` indexes Harvest users, `proj` Harvest projects.

    The first eight are what was worked (`Entries.planned`); the lifecycle (created … invoice) is
    set for every entry by `assign_lifecycle`, and `id` by `assign_ids`: until then they hold
    placeholders (NEVER, -1) that nothing reads.
    """

    user: np.ndarray
    proj: np.ndarray
    day: np.ndarray
    hours: np.ndarray
    task: np.ndarray
    note: np.ndarray
    billable: np.ndarray
    plant: np.ndarray  # why the entry exists or was bent (PLANT_*), for protection from other changes
    created: np.ndarray
    submitted: np.ndarray
    approved: np.ndarray
    corrected: np.ndarray  # when hours changed to `new_hours`
    new_hours: np.ndarray
    deleted: np.ndarray
    billed: np.ndarray  # when it was invoiced (pre-cutover ERP)
    invoice: np.ndarray  # index of the invoice or -1
    id: np.ndarray
    key: np.ndarray  # uint64: what the entry's random draws are keyed on (never depends on the block)

    @classmethod
    def planned(
        cls,
        user: np.ndarray,
        proj: np.ndarray,
        day: np.ndarray,
        hours: np.ndarray,
        task: np.ndarray,
        note: np.ndarray,
        billable: np.ndarray,
        plant: np.ndarray,
        key: np.ndarray,
    ) -> Entries:
        """Worked entries, before their lifecycle and ids are assigned."""

        def never() -> np.ndarray:
            return np.full(user.size, NEVER)

        return cls(
            user=user,
            proj=proj,
            day=day,
            hours=hours,
            task=task,
            note=note,
            billable=billable,
            plant=plant,
            created=never(),
            submitted=never(),
            approved=never(),
            corrected=never(),
            new_hours=hours.copy(),
            deleted=never(),
            billed=never(),
            invoice=np.full(user.size, -1, dtype=np.int64),
            id=np.full(user.size, -1, dtype=np.int64),
            key=np.asarray(key, dtype=np.uint64),
        )

    @property
    def size(self) -> int:
        return int(self.user.size)

    def take(self, index: np.ndarray) -> Entries:
        return Entries(**{f.name: getattr(self, f.name)[index] for f in fields(self)})

    def extend(self, other: Entries) -> Entries:
        return Entries(
            **{f.name: np.concatenate([getattr(self, f.name), getattr(other, f.name)]) for f in fields(self)}
        )


TAG_ASSIGNED, TAG_SPLIT, TAG_INTERNAL = 1, 2, 3


def build_entries(cal: Calendar, firm: Firm, pf: Portfolio, seed: int, lo: int, hi: int) -> Entries:
    """Daily time of employees lo … hi-1: assignment hours with noise, the remainder internal.

    Every draw is keyed on (assignment, day) or (employee, day), so an employee's time is the same
    whichever block of employees it is generated in.
    """
    ndays = cal.horizon_day - cal.start_day + 1
    mine = np.flatnonzero((pf.a_emp >= lo) & (pf.a_emp < hi))
    a_first = np.maximum(pf.a_start[mine], cal.start_day) - cal.start_day
    a_last = np.minimum(pf.a_end[mine], cal.horizon_day) - cal.start_day
    lens = np.maximum(a_last - a_first + 1, 0)
    rows = np.repeat(mine, lens)
    offs = np.arange(rows.size) - np.repeat(np.cumsum(lens) - lens, lens)
    dayoff = np.repeat(a_first, lens) + offs
    emp = pf.a_emp[rows]
    keep = firm.works[emp, dayoff]
    lead = pf.a_lead[rows]
    key = record_key(TAG_ASSIGNED, rows, dayoff)
    # leads do not touch every project every day
    keep &= ~lead | (Keyed(seed, "time-lead", key).random() < 0.6)
    rows, dayoff, emp, lead, key = rows[keep], dayoff[keep], emp[keep], lead[keep], key[keep]
    rng = Keyed(seed, "time", key)
    per_day = pf.a_hpw[rows] / 5.0 / np.where(lead, 0.6, 1.0)
    hours = np.maximum(np.round(per_day * rng.lognormal(0.0, 0.15) * 4) / 4, 0.5)
    proj = pf.a_proj[rows]
    task = np.where(lead, 1, rng.choice([0, 0, 0, 0, 1, 2, 3]))
    # longer days on a project are often logged as two entries on different tasks
    split = (hours >= 4) & (rng.random() < 0.75)
    first = np.round(hours * rng.uniform(0.35, 0.65) * 4) / 4
    idx = np.flatnonzero(split)
    hours = np.concatenate([np.where(split, first, hours), hours[idx] - first[idx]])
    proj = np.concatenate([proj, proj[idx]])
    emp = np.concatenate([emp, emp[idx]])
    dayoff = np.concatenate([dayoff, dayoff[idx]])
    task = np.concatenate([task, (task[idx] + 1 + (task[idx] == 0)) % 4])
    key = np.concatenate([key, record_key(TAG_SPLIT, key[idx].view(np.int64))])

    # internal time fills the rest of each working day
    cell = (emp - lo) * ndays + dayoff
    client_sum = np.bincount(cell, weights=hours, minlength=(hi - lo) * ndays)
    w_emp, w_off = np.nonzero(firm.works[lo:hi])
    w_cell = w_emp * ndays + w_off
    w_emp = w_emp + lo
    w_key = record_key(TAG_INTERNAL, w_emp, w_off)
    wrng = Keyed(seed, "time-internal", w_key)
    total = np.round(firm.daily_hours[w_emp] * wrng.normal(1.02, 0.07) * 4) / 4
    senior, junior = wrng.choice(3, p=[0.3, 0.6, 0.1]), wrng.choice(3, p=[0.6, 0.15, 0.25])
    rest = total - client_sum[w_cell]
    need = rest >= 0.5
    i_emp, i_off, i_hours = w_emp[need], w_off[need], rest[need]
    kind = np.where(firm.grade[i_emp] >= 5, senior[need], junior[need])
    i_proj = pf.n_client + firm.entity[i_emp] * 3 + kind
    i_task = 4 + kind

    user = np.concatenate([emp, i_emp])
    out = Entries.planned(
        user=user,
        proj=np.concatenate([proj, i_proj]),
        day=np.concatenate([dayoff, i_off]) + cal.start_day,
        hours=np.concatenate([hours, i_hours]),
        task=np.concatenate([task, i_task]),
        note=np.zeros(user.size, dtype=np.int64),
        billable=np.concatenate([np.ones(proj.size, dtype=bool), np.zeros(i_proj.size, dtype=bool)]),
        plant=np.zeros(user.size, dtype=np.int8),
        key=np.concatenate([key, w_key[need]]),
    )
    out.note = pick_notes(Keyed(seed, "time-notes", out.key).random(), out.task)
    return out


def pick_notes(u: np.ndarray, task: np.ndarray) -> np.ndarray:
    """A note index (into the flattened NOTES) suited to each task, from a uniform draw per entry."""
    sizes = np.array([len(n) for n in NOTES])
    base = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    return base[task] + np.minimum((u * sizes[task]).astype(np.int64), sizes[task] - 1)


NOTE_TEXT = [note for group in NOTES for note in group]


def assign_lifecycle(cal: Calendar, firm_daily: np.ndarray, entries: Entries, seed: int) -> None:
    """Created that evening; submitted daily or on Friday (sometimes two or three days late);
    approved before the fifth weekday after the day worked, so normal time never looks late."""
    rng = Keyed(seed, "lifecycle", entries.key)
    n = entries.size
    day = entries.day
    created = day * DAY + 16 * HOUR + rng.integers(0, 90 * 60)
    daily = firm_daily[entries.user]
    friday = day + (4 - weekday(day))
    late = daily & (rng.random() < 0.05)
    submitted = np.where(
        daily,
        day * DAY + 18 * HOUR + rng.integers(0, 2 * HOUR),
        friday * DAY + 16 * HOUR + rng.integers(0, 2 * HOUR),
    )
    submitted = np.where(late, add_weekdays(day, rng.integers(2, 4)) * DAY + 17 * HOUR, submitted)
    cap = add_weekdays(day, 5) * DAY
    lag = rng.integers(HOUR, 40 * HOUR)
    approved = submitted + np.minimum(lag, ((cap - submitted) * 0.8).astype(np.int64))
    entries.created = created
    entries.submitted = submitted
    entries.approved = approved
    entries.corrected = np.full(n, NEVER)
    entries.new_hours = entries.hours.copy()
    entries.deleted = np.full(n, NEVER)
    entries.billed = np.full(n, NEVER)
    entries.invoice = np.full(n, -1, dtype=np.int64)


def add_corrections_and_deletions(cal: Calendar, entries: Entries, seed: int) -> None:
    """A few approved entries are corrected days later (before anything is billed) and a few
    fresh entries after the clock are deleted before submission."""
    rng = Keyed(seed, "corrections", entries.key)
    free = entries.plant == PLANT_NONE
    fix = free & (rng.random() < 0.005) & (entries.hours > 1.0)
    when = entries.approved + rng.integers(2 * HOUR, 3 * DAY)
    entries.corrected = np.where(fix, when, entries.corrected)
    delta = rng.choice([-1.0, -0.5, 0.5, 1.0])
    entries.new_hours = np.where(fix, entries.hours + delta, entries.hours)
    gone = free & ~fix & (entries.day >= cal.clock_day) & (rng.random() < 0.003)
    moment = entries.created + ((entries.submitted - entries.created) * rng.uniform(0.2, 0.8)).astype(
        np.int64
    )
    entries.deleted = np.where(gone, moment, entries.deleted)
    entries.submitted = np.where(gone, NEVER, entries.submitted)
    entries.approved = np.where(gone, NEVER, entries.approved)


def clip_to_horizon(cal: Calendar, entries: Entries) -> Entries:
    """Events after the horizon never happen in this world; entries created after it do not exist."""
    for name in ("submitted", "approved", "corrected", "deleted", "billed"):
        values = getattr(entries, name)
        setattr(entries, name, np.where(values > cal.horizon, NEVER, values))
    # a record whose deletion is before the clock was never seen by anyone: drop it
    keep = (entries.created <= cal.horizon) & (entries.deleted > cal.clock)
    return entries.take(np.flatnonzero(keep))


ID_BASE = 2_000_000_000


def assign_ids(entries: Entries, first_id: int) -> Entries:
    """Sort by user, day, project, task, creation and number them like Harvest (large integers)
    from `first_id`: blocks of employees are numbered in employee order, so an entry's id does not
    depend on how the employees were split into blocks."""
    order = np.lexsort((entries.key, entries.created, entries.task, entries.proj, entries.day, entries.user))
    out = entries.take(order)
    out.id = first_id + np.arange(out.size, dtype=np.int64)
    return out
