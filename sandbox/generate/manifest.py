"""The manifest: every defect found by evaluating each rule on the generator's true data.

Labelling by evaluation (not by remembering what was planted) means natural cases are counted
too, so a warehouse that implements the rules correctly scores full precision and recall.
The exact reading of each rule is documented in docs/sandbox.md ("The manifest").
"""

from __future__ import annotations

import re

import numpy as np
import polars as pl

from sandbox.generate.common import DAY, NEVER, Calendar, iso_secs, month_end
from sandbox.generate.erp import Erp
from sandbox.generate.erp_time import Billing
from sandbox.generate.firm import Firm
from sandbox.generate.harvest import PROJECT_BASE, harvest_project_code
from sandbox.generate.mess import Mess
from sandbox.generate.portfolio import NO_DAY, Portfolio
from sandbox.generate.rates import RateCards
from sandbox.generate.time_entries import Entries

KINDS: list[tuple[str, str, str, str]] = [
    ("client_name_drift", "(identity)", "crm", "Account"),
    ("legacy_erp_customer", "(identity)", "erp", "Customer"),
    ("ambiguous_client_match", "CLIENT_UNMAPPED", "crm", "Account"),
    ("project_code_variant", "(identity)", "time", "projects"),
    ("unknown_project", "TIME_UNKNOWN_PROJECT", "time", "time_entries"),
    ("time_on_inactive_project", "TIME_INACTIVE_PROJECT", "time", "time_entries"),
    ("time_outside_contract", "TIME_OUTSIDE_CONTRACT", "time", "time_entries"),
    ("billable_never_approved", "TIME_UNAPPROVED_LATE", "time", "time_entries"),
    ("no_rate", "TIME_NO_RATE", "time", "time_entries"),
    ("rate_card_overlap", "TIME_RATE_CONFLICT", "psa", "rate_card_versions"),
    ("unknown_employee", "TIME_UNKNOWN_EMPLOYEE", "time", "users"),
    ("duplicate_time_entry", "TIME_DUPLICATE", "time", "time_entries"),
    ("invalid_hours", "TIME_INVALID_HOURS", "time", "time_entries"),
    ("approval_after_period_close", "TIME_CLOSED_PERIOD", "time", "time_entries"),
    ("corrected_after_billing", "CHANGED_AFTER_BILLING", "time", "time_entries"),
    ("revenue_leakage", "RECON_MISMATCH", "time", "time_entries"),
]
# time-entry kinds whose rule holds the entry back from billing (seed exception_rules.is_blocking;
# no_rate blocks on time and materials, the only time revenue leakage counts)
BLOCKING_TIME_ENTRY_KINDS = (
    "unknown_project",
    "time_on_inactive_project",
    "time_outside_contract",
    "no_rate",
    "duplicate_time_entry",
    "invalid_hours",
    "approval_after_period_close",
    "corrected_after_billing",
)
LEGAL_SUFFIXES = {"inc", "incorporated", "ltd", "llc", "corp", "plc", "gmbh", "ag", "limited", "co"}


def normalise_code(code: str) -> str:
    """`prj-123`, `PRJ00123` and `PRJ-00123` all become `PRJ123`."""
    flat = re.sub(r"[^A-Z0-9]", "", code.upper())
    return re.sub(r"(?<=[A-Z])0+(?=\d)", "", flat)


def normalise_name(name: str) -> str:
    """Lower case, no punctuation, no legal-form suffix: `NORTHWIND TRADERS LTD` → `northwind traders`."""
    words = re.sub(r"[^a-z0-9 ]", " ", name.lower()).split()
    while words and words[-1] in LEGAL_SUFFIXES:
        words.pop()
    return " ".join(words)


def first_valid_from(frame: pl.DataFrame, key: list[str]) -> dict:
    """Key (tuple or scalar) → seconds of the record's first stored version."""
    first = frame.group_by(key).agg((pl.col("_valid_from").min().dt.epoch("s")).alias("t"))
    if len(key) == 1:
        return dict(zip(first[key[0]].to_list(), first["t"].to_list(), strict=True))
    return {tuple(row[:-1]): row[-1] for row in first.select([*key, "t"]).iter_rows()}


def entry_defects(
    cal: Calendar,
    firm: Firm,
    pf: Portfolio,
    mess: Mess,
    rates: RateCards,
    erp: Erp,
    entries: Entries,
    bill: Billing,
    found: dict[str, list[tuple[object, int]]],
) -> None:
    """Evaluate every time-entry rule on one block of employees' entries (each rule looks at one
    entry, or one person's entries, so blocks of whole employees can be judged on their own)."""
    e = entries
    horizon = cal.horizon
    alive = e.deleted > horizon
    hours = np.where(e.corrected <= horizon, e.new_hours, e.hours)
    events = np.stack([e.created, e.submitted, e.approved, e.corrected, e.billed, e.deleted], axis=1)
    first_vf = np.where(
        e.created <= cal.clock, np.where(events <= cal.clock, events, -1).max(axis=1), e.created
    )
    del events
    known_proj = e.proj < pf.n_projects
    proj = np.where(known_proj, e.proj, 0)
    client = known_proj & (proj < pf.n_client)
    employee = e.user < firm.n
    emp = np.where(employee, e.user, 0)
    first_id = int(e.id[0]) if e.size else 0

    def add(kind: str, mask: np.ndarray, when: np.ndarray) -> None:
        for i in np.flatnonzero(mask):
            found[kind].append((int(e.id[i]), int(max(when[i], first_vf[i]))))

    # TIME_DUPLICATE: same user, project, day, hours and notes; the later copies
    dup = pl.DataFrame(
        {
            "i": np.arange(e.size),
            "u": e.user,
            "p": e.proj,
            "d": e.day,
            "h": hours,
            "n": e.note,
            "id": e.id,
            "vf": first_vf,
        }
    ).filter(pl.Series(alive))
    dup = (
        dup.sort("id")
        .with_columns(
            pl.int_range(pl.len()).over(["u", "p", "d", "h", "n"]).alias("rank"),
            pl.col("vf").first().over(["u", "p", "d", "h", "n"]).alias("first_vf"),
        )
        .filter(pl.col("rank") > 0)
    )
    for i, vf0 in zip(dup["i"].to_list(), dup["first_vf"].to_list(), strict=True):
        found["duplicate_time_entry"].append((int(e.id[i]), int(max(first_vf[i], vf0))))

    # TIME_INVALID_HOURS: hours ≤ 0, or the person's day adds up to more than 24
    day_key = pl.DataFrame(
        {"u": e.user, "d": e.day, "h": np.where(alive, hours, 0.0), "vf": first_vf, "a": alive}
    )
    totals = day_key.with_columns(
        pl.col("h").sum().over(["u", "d"]).alias("total"),
        pl.col("vf").filter(pl.col("a")).max().over(["u", "d"]).alias("last_vf"),
    )
    over = (totals["total"].to_numpy() > 24) & alive
    add(
        "invalid_hours", alive & ((hours <= 0) | over), np.where(over, totals["last_vf"].to_numpy(), first_vf)
    )

    # TIME_UNKNOWN_PROJECT: the code matches no PSA code even after normalising
    psa_codes = {normalise_code(c) for c in pf.p_code}
    h_codes = [harvest_project_code(pf, mess, p) for p in range(pf.n_projects)] + [
        c for _a, c, _n in mess.unknown_projects
    ]
    unknown_code = np.array([normalise_code(c) not in psa_codes for c in h_codes])
    add("unknown_project", alive & unknown_code[e.proj], first_vf)

    # TIME_INACTIVE_PROJECT: on hold, completed or cancelled on the day worked (from status_changed_on)
    hold, done = pf.p_hold[proj], pf.p_done[proj]
    on_hold = client & (hold != NO_DAY) & (e.day >= hold)
    closed = client & (done != NO_DAY) & (e.day >= done)
    change = np.where(on_hold, hold, done) * DAY
    add("time_on_inactive_project", alive & (on_hold | closed), change)

    # TIME_OUTSIDE_CONTRACT: before the contract's start or after its (final) end date
    outside = client & ((e.day < pf.p_start[proj]) | (e.day > pf.p_end[proj]))
    add("time_outside_contract", alive & outside, first_vf)

    # TIME_UNAPPROVED_LATE: billable, never approved, and the end of the fifth working day after it has passed
    user_entity = np.concatenate([firm.entity, [u[0] for u in mess.unknown_users]]).astype(np.int64)
    deadline = np.full(e.size, NEVER)
    for ent in range(3):
        work = cal.working_days(ent, cal.start_day - 10, cal.horizon_day + 40)
        sel = user_entity[e.user] == ent
        pos = np.searchsorted(work, e.day[sel], side="right")
        deadline[sel] = (work[np.minimum(pos + 4, work.size - 1)] + 1) * DAY
    never = alive & e.billable & (e.approved > horizon) & (deadline <= horizon)
    add("billable_never_approved", never, deadline)

    # TIME_NO_RATE: billable client time of an HR employee whose role has no version effective that day
    role = firm.grade[emp]
    count = np.zeros(e.size, dtype=np.int64)
    vkey = rates.proj * 8 + rates.role
    ekey = proj * 8 + role
    order = np.argsort(vkey, kind="stable")
    lo = np.searchsorted(vkey[order], ekey, side="left")
    hi = np.searchsorted(vkey[order], ekey, side="right")
    for k in range(int((hi - lo).max()) if e.size else 0):
        has = lo + k < hi
        v = order[np.minimum(lo + k, order.size - 1)]
        to = np.where(rates.eff_to[v] == NO_DAY, 10**8, rates.eff_to[v])
        count += has & (rates.eff_from[v] <= e.day) & (e.day <= to)
    add("no_rate", alive & e.billable & client & employee & (count == 0), first_vf)

    # TIME_CLOSED_PERIOD: approved after the ERP period of the day worked was closed (project's realm)
    realm_of = np.where(known_proj, pf.p_entity[proj], 0)
    for k, (a, _c, _n) in enumerate(mess.unknown_projects):
        realm_of[e.proj == pf.n_projects + k] = pf.acc_entity[a]
    ends = month_end(e.day)
    close_keys = np.array([r * 100_000 + m for r, m in erp.close_at], dtype=np.int64)
    close_order = np.argsort(close_keys)
    close_keys, close_at = close_keys[close_order], np.array(list(erp.close_at.values()))[close_order]
    wanted = realm_of.astype(np.int64) * 100_000 + ends
    pos = np.minimum(np.searchsorted(close_keys, wanted), close_keys.size - 1)
    close = np.where(close_keys[pos] == wanted, close_at[pos], NEVER)
    late_ok = alive & (e.approved <= horizon) & (e.approved > close)
    add("approval_after_period_close", late_ok, e.approved)

    # CHANGED_AFTER_BILLING: the entry's hours differ from its invoiced TimeActivity
    billed_ta = bill.billed_at <= horizon
    ta_i = bill.ta[billed_ta]
    changed = hours[ta_i] != bill.hours[billed_ta]
    mask = np.zeros(e.size, dtype=bool)
    when = np.full(e.size, NEVER)
    mask[ta_i[changed]] = True
    when[ta_i[changed]] = np.maximum(e.corrected[ta_i[changed]], bill.billed_at[billed_ta][changed])
    add("corrected_after_billing", mask & alive, when)

    # RECON_MISMATCH: approved billable T&M time of a closed month (in the realm of the project's
    # legal entity) that never reached the ERP and is not held back by a blocking rule
    in_erp = np.zeros(e.size, dtype=bool)
    in_erp[bill.ta] = True
    tm = client & (pf.p_method[proj] == 0)
    held_back = np.zeros(e.size, dtype=bool)
    for kind in BLOCKING_TIME_ENTRY_KINDS:
        # this block's entries are numbered first_id, first_id + 1, … (time-entry ids: ints)
        mine = [int(str(entry_id)) - first_id for entry_id, _when in found[kind]]
        held_back[[i for i in mine if 0 <= i < e.size]] = True
    held_back |= client & employee & (count > 1)  # priced by conflicting rate-card versions
    eligible = (
        alive
        & tm
        & e.billable
        & employee
        & (e.approved <= horizon)
        & (hours > 0)
        & (close <= horizon)
        & ~in_erp
        & ~held_back
    )
    add("revenue_leakage", eligible, np.maximum(e.approved, close))


def empty_found() -> dict[str, list[tuple[object, int]]]:
    return {kind: [] for kind, *_ in KINDS}


def build_manifest(
    cal: Calendar,
    pf: Portfolio,
    mess: Mess,
    rates: RateCards,
    frames: dict[tuple[str, str], pl.DataFrame],
    hr_emails: set[str],
    found: dict[str, list[tuple[object, int]]],
    seed: int,
    preset: str,
) -> dict:
    """Add the firm-wide rules (rate cards, users, codes, identity) to the time-entry defects every
    block found, and return the manifest document."""
    vkey = rates.proj * 8 + rates.role
    # TIME_RATE_CONFLICT: rate-card versions of one card and role whose dates overlap (both of them)
    rcv_vf = first_valid_from(frames[("psa", "rate_card_versions")], ["id"])
    for key in np.unique(vkey):
        idx = np.flatnonzero(vkey == key)
        for a in range(idx.size):
            for b in range(a + 1, idx.size):
                i, j = idx[a], idx[b]
                ti = 10**8 if rates.eff_to[i] == NO_DAY else rates.eff_to[i]
                tj = 10**8 if rates.eff_to[j] == NO_DAY else rates.eff_to[j]
                if rates.eff_from[i] <= tj and rates.eff_from[j] <= ti:
                    ids = (str(9_100_000 + i), str(9_100_000 + j))
                    if ids[0] in rcv_vf and ids[1] in rcv_vf:
                        both = max(rcv_vf[ids[0]], rcv_vf[ids[1]])
                        found["rate_card_overlap"] += [(ids[0], both), (ids[1], both)]

    # TIME_UNKNOWN_EMPLOYEE: Harvest users whose email HR does not have
    users_vf = first_valid_from(frames[("time", "users")], ["id"])
    users = frames[("time", "users")].unique("id", keep="first").sort("id")
    for uid, mail in zip(users["id"].to_list(), users["email"].to_list(), strict=True):
        if mail.lower() not in hr_emails:
            found["unknown_employee"].append((uid, users_vf[uid]))

    h_codes = [harvest_project_code(pf, mess, p) for p in range(pf.n_projects)]

    # identity: harvest codes typed differently from the PSA's
    projects_vf = first_valid_from(frames[("time", "projects")], ["id"])
    for p in range(pf.n_projects):
        if h_codes[p] != pf.p_code[p]:
            found["project_code_variant"].append((PROJECT_BASE + p, projects_vf[PROJECT_BASE + p]))

    _identity(cal, pf, frames, found)
    return _document(cal, seed, preset, found)


def _identity(cal: Calendar, pf: Portfolio, frames, found) -> None:
    accounts = frames[("crm", "Account")].unique("Id", keep="last")
    acc_vf = first_valid_from(frames[("crm", "Account")], ["Id"])
    acc_name = dict(zip(accounts["Id"].to_list(), accounts["Name"].to_list(), strict=True))
    customers = frames[("erp", "Customer")].sort("_valid_from").unique(["_realm", "Id"], keep="last")
    cust_vf = first_valid_from(frames[("erp", "Customer")], ["_realm", "Id"])
    clients = customers.filter(~pl.col("Job"))
    for realm, cid, notes in clients.select("_realm", "Id", "Notes").iter_rows():
        if not (notes or "").startswith("sfdc:"):
            found["legacy_erp_customer"].append((f"{realm}:{cid}", cust_vf[(realm, cid)]))

    # name drift: the time tool's or the ERP's name for the account differs from the CRM's
    harvest_clients = frames[("time", "clients")].unique("id", keep="last")
    h_vf = first_valid_from(frames[("time", "clients")], ["id"])
    from sandbox.generate.harvest import CLIENT_BASE

    acc_ids = sorted(acc_name)
    index_of = {aid: k for k, aid in enumerate(_account_ids(frames))}
    drift: dict[str, int] = {}
    for hid, name in harvest_clients.select("id", "name").iter_rows():
        a = hid - CLIENT_BASE
        aid = _account_ids(frames)[a] if a < len(index_of) else None
        if aid is not None and name != acc_name[aid]:
            drift[aid] = min(drift.get(aid, NEVER), max(h_vf[hid], acc_vf[aid]))
    for realm, cid, name, notes in clients.select("_realm", "Id", "DisplayName", "Notes").iter_rows():
        if (notes or "").startswith("sfdc:"):
            aid = notes[5:]
            if aid in acc_name and name != acc_name[aid]:
                drift[aid] = min(drift.get(aid, NEVER), max(cust_vf[(realm, cid)], acc_vf[aid]))
    found["client_name_drift"] += sorted(drift.items())
    del acc_ids

    # CLIENT_UNMAPPED: per realm where the account has a contract, ERP customers matching by note or name
    contracts = frames[("crm", "Contract")]
    con_vf = contracts.group_by("AccountId", "LegalEntity__c").agg(
        pl.col("_valid_from").min().dt.epoch("s").alias("t")
    )
    from sandbox.generate.common import ENTITY_CODES, REALMS

    realm_of = dict(zip(ENTITY_CODES, REALMS, strict=True))
    by_realm: dict[str, list[tuple[str, str, str | None]]] = {}
    for realm, cid, name, notes in clients.select("_realm", "Id", "DisplayName", "Notes").iter_rows():
        by_realm.setdefault(realm, []).append((cid, normalise_name(name), notes))
    unmapped: dict[str, int] = {}
    for aid, entity, t in con_vf.sort("AccountId", "LegalEntity__c").iter_rows():
        realm = realm_of[entity]
        target = normalise_name(acc_name[aid])
        hits = [
            cid for cid, norm, notes in by_realm.get(realm, []) if notes == f"sfdc:{aid}" or norm == target
        ]
        if len(hits) != 1:
            seen = max([t, acc_vf[aid]] + [cust_vf[(realm, c)] for c in hits])
            unmapped[aid] = min(unmapped.get(aid, NEVER), seen)
    found["ambiguous_client_match"] += sorted(unmapped.items())


def _account_ids(frames) -> list[str]:
    from sandbox.generate.common import sf_id

    n = frames[("crm", "Account")]["Id"].n_unique()
    return sf_id("001", np.arange(1, n + 1))


def _document(cal: Calendar, seed: int, preset: str, found: dict) -> dict:
    defects = {}
    for kind, rule, system, entity in KINDS:
        records = sorted(
            set(found[kind]), key=lambda r: str(r[0]) if not isinstance(r[0], int) else f"{r[0]:020d}"
        )
        defects[kind] = {
            "rule": rule,
            "system": system,
            "entity": entity,
            "count": len(records),
            "records": [{"id": rid, "visible_at": iso_secs(t)} for rid, t in records],
        }
    return {"seed": seed, "preset": preset, "clock": iso_secs(cal.clock), "defects": defects}
