"""The generation pipeline: firm → portfolio → time → ERP → records → manifest → HR drop."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl

from sandbox.generate.common import LEGAL_ENTITIES, Calendar, iso_secs
from sandbox.generate.crm import build_crm, crm_ids
from sandbox.generate.erp import build_erp
from sandbox.generate.firm import build_firm
from sandbox.generate.harvest import build_harvest, user_tables
from sandbox.generate.hr import build_hr
from sandbox.generate.manifest import build_manifest
from sandbox.generate.mess import plant_after_billing, plant_approvals, plant_entries, plant_identity
from sandbox.generate.portfolio import build_portfolio
from sandbox.generate.presets import get_preset
from sandbox.generate.psa import build_psa, build_stories
from sandbox.generate.rates import build_rate_cards
from sandbox.generate.time_entries import (
    add_corrections_and_deletions,
    assign_ids,
    assign_lifecycle,
    build_entries,
    clip_to_horizon,
)
from sandbox.generate.versions import collapse
from sandbox.world import World, write_entity, write_meta

ERP_KEYS = {
    "ExchangeRate": ["_realm", "SourceCurrencyCode", "TargetCurrencyCode", "AsOfDate"],
    "period_closes": ["_realm", "period_end"],
}
PHASES = ["firm", "portfolio", "time", "erp", "records", "manifest", "hr drop"]


class _Progress:
    def __init__(self, enabled: bool):
        self.bar = None
        if enabled:
            from tqdm import tqdm

            self.bar = tqdm(total=len(PHASES), desc="generate", unit="phase", leave=True)

    def step(self, name: str) -> None:
        if self.bar is not None:
            self.bar.set_postfix_str(f"{name} done")
            self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def generate_world(preset_name: str, seed: int, out: Path, progress: bool = False) -> Path:
    """Write the world for a preset and seed into `out`; returns `out`. Deterministic to the byte."""
    preset = get_preset(preset_name)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    bar = _Progress(progress)
    cal = Calendar.build(preset)

    firm = build_firm(cal, preset.employees, seed)
    bar.step("firm")
    pf = build_portfolio(cal, firm, preset.employees_per_account, seed)
    ids = crm_ids(firm, pf)
    mess = plant_identity(cal, firm, pf, seed)
    rates = build_rate_cards(firm, pf, mess)
    bar.step("portfolio")

    entries = build_entries(cal, firm, pf, seed)
    entries = plant_entries(cal, firm, pf, mess, entries, seed)
    users = user_tables(firm, mess)
    assign_lifecycle(cal, users["daily"], entries, seed)
    from sandbox.generate.erp import period_closes

    closes = period_closes(cal)
    entity_of_project = np.concatenate(
        [pf.p_entity, [pf.acc_entity[a] for a, _c, _n in mess.unknown_projects]]
    )
    plant_approvals(cal, entries, closes, entity_of_project.astype(np.int64), seed)
    add_corrections_and_deletions(cal, entries, seed)
    entries = assign_ids(clip_to_horizon(cal, entries))
    bar.step("time")

    stories = build_stories(cal, pf, seed)
    contract_numbers = ids["contract_number"] + [""] * (pf.n_projects - pf.n_client)
    erp = build_erp(cal, firm, pf, mess, rates, entries, ids["account"], stories, contract_numbers, seed)
    plant_after_billing(cal, entries, seed)
    bar.step("erp")

    frames: dict[tuple[str, str], pl.DataFrame] = {}
    for name, frame in build_crm(cal, firm, pf, ids, seed).items():
        frames[("crm", name)] = frame
    for name, frame in build_psa(cal, firm, pf, rates, stories, contract_numbers, ids["account"]).items():
        frames[("psa", name)] = frame
    for name, frame in build_harvest(cal, firm, pf, mess, rates, entries, erp.invoice_numbers, seed).items():
        frames[("time", name)] = frame
    for name, frame in build_hr(cal, firm, seed).items():
        frames[("hr", name)] = frame
    for name, frame in erp.frames.items():
        frames[("erp", name)] = collapse(frame, ERP_KEYS.get(name, ["_realm", "Id"]), cal.clock, cal.horizon)
    for (system, entity), frame in sorted(frames.items()):
        write_entity(out, system, entity, frame)
    bar.step("records")

    manifest = build_manifest(cal, firm, pf, mess, rates, entries, erp, frames, seed, preset.name)
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
    """Record counts (current state at the clock) per entity, for the CLI's one-line summary."""
    world = World(out)
    counts: dict[str, int] = {}
    for system, entity in sorted({(p.parent.name, p.stem) for p in Path(out).glob("*/*.parquet")}):
        counts[f"{system}/{entity}"] = world.state(system, entity).height
    return counts
