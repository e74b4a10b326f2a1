"""Salesforce: users (the firm's leaders), accounts, opportunities (won and lost) and contracts."""

from __future__ import annotations

import numpy as np
import polars as pl

from sandbox.generate.common import DAY, ENTITY_CODES, HOUR, Calendar, date_col, rng_for, sf_id
from sandbox.generate.firm import GRADE_NAMES, LEAD_GRADE, PRACTICES, Firm
from sandbox.generate.portfolio import METHOD_SF, NO_DAY, Portfolio
from sandbox.generate.versions import collapse, stack

STAGES = {"Prospecting": 10, "Proposal/Price Quote": 60, "Closed Won": 100, "Closed Lost": 0}


def crm_ids(firm: Firm, pf: Portfolio) -> dict:
    """Stable Salesforce ids for users (per leader), accounts and client projects' contracts."""
    leaders = np.flatnonzero(firm.grade >= LEAD_GRADE)
    return {
        "leaders": leaders,
        "user": dict(zip(leaders.tolist(), sf_id("005", np.arange(1, leaders.size + 1)), strict=True)),
        "account": sf_id("001", np.arange(1, len(pf.acc_name) + 1)),
        "opportunity": sf_id("006", np.arange(1, pf.n_client + 1)),
        "contract": sf_id("800", np.arange(1, pf.n_client + 1)),
        "contract_number": [f"{10_000 + p:08d}" for p in range(pf.n_client)],
    }


def build_crm(cal: Calendar, firm: Firm, pf: Portfolio, ids: dict, seed: int) -> dict[str, pl.DataFrame]:
    """Entity name → collapsed version frame."""
    rng = rng_for(seed, "crm")
    out: dict[str, pl.DataFrame] = {}
    leaders = ids["leaders"]
    user_rows = []
    for e in leaders.tolist():
        row = {
            "Id": ids["user"][e],
            "Username": firm.email[e],
            "Email": firm.email[e],
            "FirstName": firm.first_name[e],
            "LastName": firm.last_name[e],
            "Name": firm.name(e),
            "Title": GRADE_NAMES[firm.grade[e]],
        }
        user_rows.append(
            {**row, "IsActive": True, "_t": max(int(firm.hire_day[e]), cal.start_day - 900) * DAY + 8 * HOUR}
        )
        if firm.term_day[e] <= cal.horizon_day:
            user_rows.append({**row, "IsActive": False, "_t": (int(firm.term_day[e]) + 1) * DAY + 8 * HOUR})
    out["User"] = collapse(pl.DataFrame(user_rows, infer_schema_length=None), ["Id"], cal.clock, cal.horizon)

    from sandbox.generate.portfolio import COUNTRIES

    n_acc = len(pf.acc_name)
    first_signed = np.full(n_acc, NO_DAY)
    for p in range(pf.n_client):
        a = pf.p_account[p]
        if first_signed[a] == NO_DAY or pf.p_signed[p] < first_signed[a]:
            first_signed[a] = pf.p_signed[p]
    acc_rows = []
    for a in range(n_acc):
        row = {
            "Id": ids["account"][a],
            "Name": pf.acc_name[a],
            "Industry": pf.acc_industry[a],
            "BillingCountry": COUNTRIES[ENTITY_CODES[pf.acc_entity[a]]],
            "CurrencyIsoCode": pf.acc_currency[a],
            "OwnerId": ids["user"][int(pf.acc_owner[a])],
            "IsDeleted": False,
        }
        created = min(
            int(pf.acc_created[a]), int(first_signed[a]) - 120 if first_signed[a] != NO_DAY else 10**7
        )
        acc_rows.append({**row, "Type": "Prospect", "_t": created * DAY + 10 * HOUR})
        if first_signed[a] != NO_DAY:
            acc_rows.append({**row, "Type": "Customer", "_t": int(first_signed[a]) * DAY + 10 * HOUR})
    out["Account"] = collapse(
        pl.DataFrame(acc_rows, infer_schema_length=None), ["Id"], cal.clock, cal.horizon
    )

    opp_rows = []
    seen_account: set[int] = set()
    order = np.argsort(pf.p_signed[: pf.n_client], kind="stable")
    for p in order.tolist():
        a = int(pf.p_account[p])
        value = float(pf.budget_amount[p])
        row = {
            "Id": ids["opportunity"][p],
            "Name": pf.p_title[p],
            "AccountId": ids["account"][a],
            "CloseDate": int(pf.p_signed[p]),
            "Amount": value,
            "CurrencyIsoCode": pf.p_currency[p],
            "Type": "Existing Business" if a in seen_account else "New Business",
            "OwnerId": ids["user"][int(pf.p_lead[p])],
            "Practice__c": PRACTICES[pf.p_practice[p]],
            "BillingMethod__c": METHOD_SF[pf.p_method[p]],
        }
        seen_account.add(a)
        signed = int(pf.p_signed[p])
        opened = signed - int(rng.integers(20, 90))
        for stage, day in (
            ("Prospecting", opened),
            ("Proposal/Price Quote", signed - 10),
            ("Closed Won", signed),
        ):
            opp_rows.append(
                {
                    **row,
                    "StageName": stage,
                    "Probability": STAGES[stage],
                    "IsClosed": stage == "Closed Won",
                    "IsWon": stage == "Closed Won",
                    "_t": day * DAY + 14 * HOUR,
                }
            )
    n_lost = max(2, int(pf.n_client * 0.4))
    lost_ids = sf_id("006", np.arange(pf.n_client + 1, pf.n_client + n_lost + 1))
    for k in range(n_lost):
        a = int(rng.integers(n_acc))
        close = int(rng.integers(cal.start_day - 100, cal.horizon_day + 40))
        method = int(rng.integers(4))
        row = {
            "Id": lost_ids[k],
            "Name": f"{pf.acc_name[a].split(' ')[0]} proposal {k + 1}",
            "AccountId": ids["account"][a],
            "CloseDate": close,
            "Amount": float(rng.integers(20, 400)) * 1000.0,
            "CurrencyIsoCode": pf.acc_currency[a],
            "Type": "New Business",
            "OwnerId": ids["user"][int(pf.acc_owner[a])],
            "Practice__c": PRACTICES[int(rng.integers(4))],
            "BillingMethod__c": METHOD_SF[method],
        }
        opp_rows.append(
            {
                **row,
                "StageName": "Prospecting",
                "Probability": 10,
                "IsClosed": False,
                "IsWon": False,
                "_t": (close - 60) * DAY + 14 * HOUR,
            }
        )
        opp_rows.append(
            {
                **row,
                "StageName": "Closed Lost",
                "Probability": 0,
                "IsClosed": True,
                "IsWon": False,
                "_t": close * DAY + 14 * HOUR,
            }
        )
    opps = pl.DataFrame(opp_rows, infer_schema_length=None)
    opps = opps.with_columns(date_col(opps["CloseDate"].to_numpy(), "CloseDate"))
    out["Opportunity"] = collapse(opps, ["Id"], cal.clock, cal.horizon)

    con_rows = []
    for p in range(pf.n_client):
        method = int(pf.p_method[p])
        row = {
            "Id": ids["contract"][p],
            "ContractNumber": ids["contract_number"][p],
            "AccountId": ids["account"][int(pf.p_account[p])],
            "StartDate": int(pf.p_start[p]),
            "CurrencyIsoCode": pf.p_currency[p],
            "OpportunityId__c": ids["opportunity"][p],
            "ContractValue__c": float(pf.budget_amount[p]),
            "BillingMethod__c": METHOD_SF[method],
            "LegalEntity__c": ENTITY_CODES[pf.p_entity[p]],
            "MonthlyFee__c": float(pf.monthly_fee[p]) if method == 3 else None,
        }
        signed = int(pf.p_signed[p])
        con_rows.append(
            {**row, "EndDate": int(pf.p_orig_end[p]), "Status": "Draft", "_t": signed * DAY + 15 * HOUR}
        )
        con_rows.append(
            {
                **row,
                "EndDate": int(pf.p_orig_end[p]),
                "Status": "Activated",
                "_t": (signed + 1) * DAY + 9 * HOUR,
            }
        )
        if pf.p_amend[p] != NO_DAY:
            con_rows.append(
                {
                    **row,
                    "EndDate": int(pf.p_end[p]),
                    "Status": "Activated",
                    "_t": (int(pf.p_amend[p]) - 3) * DAY + 11 * HOUR,
                }
            )
        con_rows.append(
            {
                **row,
                "EndDate": int(pf.p_end[p]),
                "Status": "Expired",
                "_t": (int(pf.p_end[p]) + 1) * DAY + 2 * HOUR,
            }
        )
    cons = pl.DataFrame(con_rows, infer_schema_length=None)
    cons = cons.with_columns(
        date_col(cons["StartDate"].to_numpy(), "StartDate"), date_col(cons["EndDate"].to_numpy(), "EndDate")
    )
    out["Contract"] = collapse(cons, ["Id"], cal.clock, cal.horizon)
    return out


__all__ = ["build_crm", "crm_ids", "stack"]
