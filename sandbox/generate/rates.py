"""Rate cards: one per client project, a version per role, a new version per amendment."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sandbox.generate.firm import GRADES, Firm
from sandbox.generate.mess import Mess
from sandbox.generate.portfolio import NO_DAY, Portfolio, role_rate


@dataclass
class RateCards:
    """Rate-card versions as arrays, plus [project, role] lookup tables of the true rates."""

    proj: np.ndarray
    role: np.ndarray
    rate: np.ndarray
    eff_from: np.ndarray
    eff_to: np.ndarray  # NO_DAY = open-ended
    created_day: np.ndarray
    closed_day: np.ndarray  # day effective_to was set, NO_DAY if never
    first: np.ndarray  # [project, role] rate before any amendment, nan where the card lacks the role
    second: np.ndarray  # [project, role] rate after the amendment, nan where none

    def true_rate(self, pf: Portfolio, proj: np.ndarray, role: np.ndarray, day: np.ndarray) -> np.ndarray:
        """The bill rate the firm actually charges: the version effective that day (nan if none)."""
        amend = pf.p_amend[proj]
        later = (amend != NO_DAY) & (day >= amend)
        return np.where(later, self.second[proj, role], self.first[proj, role])


def build_rate_cards(firm: Firm, pf: Portfolio, mess: Mess) -> RateCards:
    """Standard card for every client project at its client-specific level; amendments uplift it."""
    n_roles = len(GRADES)
    n_client = pf.n_client
    proj = np.repeat(np.arange(n_client), n_roles)
    role = np.tile(np.arange(n_roles), n_client)
    currency = [pf.p_currency[p] for p in proj]
    rate1 = role_rate(role, currency, pf.p_rate_level[proj])
    rate2 = np.round(rate1 * pf.p_rate_uplift[proj] / 5) * 5
    missing = np.array([(int(p), int(r)) in mess.no_rate for p, r in zip(proj, role, strict=True)])
    overlap = np.array([(int(p), int(r)) in mess.rate_overlap for p, r in zip(proj, role, strict=True)])
    amend = pf.p_amend[proj]
    amended = amend != NO_DAY
    first = np.full((pf.n_projects, n_roles), np.nan)
    second = np.full((pf.n_projects, n_roles), np.nan)
    first[proj[~missing], role[~missing]] = rate1[~missing]
    second[proj[~missing & amended], role[~missing & amended]] = rate2[~missing & amended]

    v1 = ~missing
    v2 = ~missing & amended
    closes = v1 & amended & ~overlap
    out_proj = np.concatenate([proj[v1], proj[v2]])
    out_role = np.concatenate([role[v1], role[v2]])
    out_rate = np.concatenate([rate1[v1], rate2[v2]])
    eff_from = np.concatenate([pf.p_start[proj[v1]], amend[v2]])
    eff_to = np.concatenate([np.where(closes[v1], amend[v1] - 1, NO_DAY), np.full(int(v2.sum()), NO_DAY)])
    created = np.concatenate([pf.p_signed[proj[v1]], amend[v2] - 3])
    closed = np.concatenate([np.where(closes[v1], amend[v1] - 3, NO_DAY), np.full(int(v2.sum()), NO_DAY)])
    order = np.lexsort((eff_from, out_role, out_proj))
    return RateCards(
        proj=out_proj[order],
        role=out_role[order],
        rate=out_rate[order],
        eff_from=eff_from[order],
        eff_to=eff_to[order],
        created_day=created[order],
        closed_day=closed[order],
        first=first,
        second=second,
    )
