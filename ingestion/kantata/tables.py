"""Kantata OX record shapes as they land: declared types, keys, change cursor and contracts.

Kantata ids (and the ids that refer to other records) are numeric strings and stay strings.
"""

from __future__ import annotations

import polars as pl

from ingestion.records import NUMBER, STRING, Schema, TableSpec

S, F, INT, B = pl.String, pl.Float64, pl.Int64, pl.Boolean
STATUS = pl.Struct({"key": INT, "message": S, "color": S})
STAMPS: Schema = {"created_at": S, "updated_at": S}
CURSOR = "updated_at"
MAX_PER_PAGE = 200  # Kantata's cap on `per_page`

TABLES = (
    TableSpec(
        "workspaces",
        ("id",),
        {
            "id": S,
            "title": S,
            "project_code": S,
            "client_name": S,
            "crm_account_id": S,
            "contract_number": S,
            "billing_method": S,
            "budget_hours": F,
            "budget_amount": F,
            "currency": S,
            "status": STATUS,
            "status_changed_on": S,
            "practice": S,
            "legal_entity": S,
            "project_lead_email": S,
            "start_date": S,
            "due_date": S,
            "archived": B,
            **STAMPS,
        },
        cursor=CURSOR,
        critical={
            "id": STRING,
            "budget_amount": NUMBER,
            "budget_hours": NUMBER,
            "due_date": STRING,
            CURSOR: STRING,
        },
        finance_critical=True,
    ),
    TableSpec(
        "stories",
        ("id",),
        {
            "id": S,
            "workspace_id": S,
            "title": S,
            "story_type": S,
            "amount": F,
            "currency": S,
            "due_date": S,
            "state": S,
            "completed_on": S,
            **STAMPS,
        },
        cursor=CURSOR,
        critical={
            "id": STRING,
            "workspace_id": STRING,
            "amount": NUMBER,
            "due_date": STRING,
            "completed_on": STRING,
            CURSOR: STRING,
        },
        finance_critical=True,
    ),
    TableSpec(
        "assignments",
        ("id",),
        {
            "id": S,
            "workspace_id": S,
            "assignee_email": S,
            "assignee_name": S,
            "role": S,
            "hours_per_week": F,
            "start_date": S,
            "end_date": S,
            **STAMPS,
        },
        cursor=CURSOR,
        critical={"id": STRING, "workspace_id": STRING, "hours_per_week": NUMBER, CURSOR: STRING},
    ),
    TableSpec(
        "rate_cards",
        ("id",),
        {"id": S, "workspace_id": S, "contract_number": S, "title": S, "currency": S, **STAMPS},
        cursor=CURSOR,
        critical={"id": STRING, "workspace_id": STRING, CURSOR: STRING},
    ),
    TableSpec(
        "rate_card_versions",
        ("id",),
        {
            "id": S,
            "rate_card_id": S,
            "role": S,
            "bill_rate": F,
            "currency": S,
            "effective_from": S,
            "effective_to": S,
            **STAMPS,
        },
        cursor=CURSOR,
        critical={
            "id": STRING,
            "rate_card_id": STRING,
            "bill_rate": NUMBER,
            "effective_from": STRING,
            "effective_to": STRING,
            CURSOR: STRING,
        },
        finance_critical=True,
    ),
)
