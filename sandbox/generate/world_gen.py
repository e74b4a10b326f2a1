"""The generation pipeline: firm → portfolio → time → ERP → records → manifest → HR drop."""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import numpy as np
import polars as pl

from sandbox.generate.blocks import Parts
from sandbox.generate.common import LEGAL_ENTITIES, Calendar, iso_secs
from sandbox.generate.crm import build_crm, crm_ids
from sandbox.generate.erp import build_erp, period_closes
from sandbox.generate.erp_time import (
    bill_block,
    build_invoices,
    line_rows,
    mark_invoiced,
    pc_done,
    store_lines,
    time_activity_frame,
)
from sandbox.generate.firm import Firm, build_firm
from sandbox.generate.harvest import build_harvest, time_entry_frame, user_tables
from sandbox.generate.hr import build_hr
from sandbox.generate.manifest import build_manifest, empty_found, entry_defects
from sandbox.generate.mess import (
    Mess,
    PlantPlan,
    plan_plants,
    plant_after_billing,
    plant_approvals,
    plant_entries,
    plant_identity,
    stranger_entries,
)
from sandbox.generate.portfolio import Portfolio, build_portfolio
from sandbox.generate.presets import DEFAULT_BLOCK_EMPLOYEES, get_preset
from sandbox.generate.psa import build_psa, build_stories
from sandbox.generate.rates import build_rate_cards
from sandbox.generate.time_entries import (
    ID_BASE,
    Entries,
    add_corrections_and_deletions,
    assign_ids,
    assign_lifecycle,
    build_entries,
    clip_to_horizon,
)
from sandbox.generate.versions import collapse
from sandbox.world import ENTITIES, World, write_entity, write_meta

ERP_KEYS = {
    "ExchangeRate": ["_realm", "SourceCurrencyCode", "TargetCurrencyCode", "AsOfDate"],
    "period_closes": ["_realm", "period_end"],
}
PHASES = ["firm", "portfolio", "time", "erp", "records", "manifest", "hr drop"]


class _Progress:
    def __init__(self, enabled: bool, total: int):
        self.bar = None
        if enabled:
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc="generate", unit="step", leave=True)

    def step(self, name: str) -> None:
        if self.bar is not None:
            self.bar.set_postfix_str(f"{name} done")
            self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _block_entries(
    cal: Calendar,
    firm: Firm,
    pf: Portfolio,
    mess: Mess,
    plan: PlantPlan,
    daily: np.ndarray,
    closes: dict,
    entity_of_project: np.ndarray,
    block: tuple[int, int],
    first_id: int,
    seed: int,
) -> Entries:
    """The time of employees lo … hi-1 (or, for the block (n, n), of the strangers), planted, with
    its lifecycle, numbered from `first_id`."""
    lo, hi = block
    if lo < firm.n:
        entries = build_entries(cal, firm, pf, seed, lo, hi)
        entries = plant_entries(cal, firm, pf, mess, plan, entries, seed)
    else:
        entries = stranger_entries(cal, firm, pf, mess, plan, seed)
    assign_lifecycle(cal, daily, entries, seed)
    plant_approvals(cal, entries, closes, entity_of_project, plan, seed)
    add_corrections_and_deletions(cal, entries, seed)
    return assign_ids(clip_to_horizon(cal, entries), first_id)


def generate_world(
    preset_name: str,
    seed: int,
    out: Path,
    progress: bool = False,
    block_employees: int = DEFAULT_BLOCK_EMPLOYEES,
) -> Path:
    """Write the world for a preset and seed into `out`; returns `out`. Deterministic to the byte,
    and the same bytes whatever `block_employees` (how many employees' time is held at once)."""
    if block_employees < 1:
        raise ValueError(f"block_employees must be at least 1, not {block_employees}")
    preset = get_preset(preset_name)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cal = Calendar.build(preset)
    firm = build_firm(cal, preset.employees, seed)
    blocks = [(lo, min(lo + block_employees, firm.n)) for lo in range(0, firm.n, block_employees)]
    blocks.append((firm.n, firm.n))  # the strangers: Harvest users HR does not know
    bar = _Progress(progress, len(PHASES) + 2 * len(blocks))
    bar.step("firm")
    pf = build_portfolio(cal, firm, preset.employees_per_account, seed)
    ids = crm_ids(firm, pf)
    mess = plant_identity(cal, firm, pf, seed)
    rates = build_rate_cards(firm, pf, mess)
    plan = plan_plants(cal, firm, pf, mess, seed)
    erp = build_erp(cal, firm, pf, mess, ids["account"], seed)
    bar.step("portfolio")

    daily = user_tables(firm, mess)["daily"]
    closes = period_closes(cal)
    entity_of_project = np.concatenate(
        [pf.p_entity, [pf.acc_entity[a] for a, _c, _n in mess.unknown_projects]]
    ).astype(np.int64)
    scratch = out / ".blocks"
    scratch.mkdir(exist_ok=True)
    try:
        # pass 1: each block's entries, its TimeActivities and invoice lines; firm-wide sums
        next_id = ID_BASE
        pairs: list[pl.DataFrame] = []
        first_user_day: dict[int, int] = {}
        first_proj_day: dict[int, int] = {}
        pc_hours = np.zeros(0)
        for k, block in enumerate(blocks):
            entries = _block_entries(
                cal, firm, pf, mess, plan, daily, closes, entity_of_project, block, next_id, seed
            )
            next_id += entries.size
            bill = bill_block(cal, firm, pf, rates, erp, plan, entries, seed)
            pairs.append(store_lines(scratch / "lines", k, line_rows(bill)))
            done = pc_done(pf, erp, entries)
            pc_hours = done if k == 0 else pc_hours + done
            for field, table in (("user", first_user_day), ("proj", first_proj_day)):
                values = getattr(entries, field)
                beyond = values >= (firm.n if field == "user" else pf.n_projects)
                for v in np.unique(values[beyond]).tolist():
                    day = int(entries.day[values == v].min())
                    table[v] = min(day, table.get(v, day))
            with open(scratch / f"{k:06d}.pickle", "wb") as handle:
                pickle.dump((entries, bill), handle, protocol=pickle.HIGHEST_PROTOCOL)
            del entries, bill
            bar.step(f"time block {k + 1}/{len(blocks)}")
        bar.step("time")

        stories = build_stories(cal, pf, seed)
        contract_numbers = ids["contract_number"] + [""] * (pf.n_projects - pf.n_client)
        invoicing = build_invoices(
            cal,
            pf,
            erp,
            scratch / "lines",
            pl.concat(pairs),
            pc_hours,
            stories,
            contract_numbers,
            out / "erp" / "Invoice.parquet",
        )
        shutil.rmtree(scratch / "lines", ignore_errors=True)
        harvest, lookups = build_harvest(cal, firm, pf, mess, rates, first_user_day, first_proj_day, seed)
        bar.step("erp")

        # pass 2: each block's records (Harvest versions, TimeActivities) and time-entry defects
        time_parts = Parts(out / "time" / "time_entries.parquet")
        ta_parts = Parts(out / "erp" / "TimeActivity.parquet")
        found = empty_found()
        for k in range(len(blocks)):
            path = scratch / f"{k:06d}.pickle"
            with open(path, "rb") as handle:
                entries, bill = pickle.load(handle)
            path.unlink()
            mark_invoiced(erp, invoicing, entries, bill)
            plant_after_billing(cal, entries, plan, seed)
            time_parts.add(
                time_entry_frame(cal, firm, pf, mess, rates, entries, lookups, erp.invoice_numbers)
            )
            activities = time_activity_frame(cal, pf, firm, erp, invoicing, entries, bill)
            activities = collapse(activities, ["_realm", "Id"], cal.clock, cal.horizon)
            ta_parts.add(activities.sort(["_emp", "_realm", "Id", "_valid_from"]).drop("_emp"))
            entry_defects(cal, firm, pf, mess, rates, erp, entries, bill, found)
            del entries, bill, activities
            bar.step(f"records block {k + 1}/{len(blocks)}")
        time_parts.finish()
        ta_parts.finish()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    frames: dict[tuple[str, str], pl.DataFrame] = {}
    for name, frame in build_crm(cal, firm, pf, ids, seed).items():
        frames[("crm", name)] = frame
    for name, frame in build_psa(cal, firm, pf, rates, stories, contract_numbers, ids["account"]).items():
        frames[("psa", name)] = frame
    for name, frame in harvest.items():
        frames[("time", name)] = frame
    for name, frame in build_hr(cal, firm, seed).items():
        frames[("hr", name)] = frame
    for name, frame in erp.frames.items():
        frames[("erp", name)] = collapse(frame, ERP_KEYS.get(name, ["_realm", "Id"]), cal.clock, cal.horizon)
    for (system, entity), frame in sorted(frames.items()):
        write_entity(out, system, entity, frame)
    bar.step("records")

    hr_emails = {m.lower() for m in firm.email}
    manifest = build_manifest(cal, pf, mess, rates, frames, hr_emails, found, seed, preset.name)
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=False) + "\n")
    meta = {
        "format_version": 1,
        "seed": seed,
        "preset": preset.name,
        "start_date": cal.start_date.isoformat(),
        "cutover_at": iso_secs(cal.clock),
        "clock": iso_secs(cal.clock),
        "horizon_end": iso_secs(cal.horizon),
        "reporting_currency": "USD",
        "legal_entities": LEGAL_ENTITIES,
    }
    write_meta(out, meta)
    bar.step("manifest")

    from sandbox.hr_drop import deliver

    deliver(World(out))
    bar.step("hr drop")
    bar.close()
    return out


def summary(out: Path) -> dict[str, int]:
    """Record counts (current state at the clock) per entity, for the CLI's one-line summary;
    counted by a streaming scan, so a world bigger than memory can be summarised."""
    world = World(out)
    clock = world.clock
    counts: dict[str, int] = {}
    for system, entity in sorted({(p.parent.name, p.stem) for p in Path(out).glob("*/*.parquet")}):
        if (system, entity) not in ENTITIES:
            continue
        spec = ENTITIES[(system, entity)]
        key = [*(["_realm"] if spec.per_realm else []), *spec.key]
        scan = pl.scan_parquet(Path(out) / system / f"{entity}.parquet")
        if "_deleted" not in scan.collect_schema().names():
            scan = scan.with_columns(pl.lit(False).alias("_deleted"))
        current = (
            scan.filter(pl.col("_valid_from") <= clock)
            .group_by(key)
            .agg(pl.col("_deleted").fill_null(False).sort_by("_valid_from").last())
            .filter(~pl.col("_deleted"))
            .select(pl.len())
        )
        counts[f"{system}/{entity}"] = int(current.collect(engine="streaming").item())
    return counts
