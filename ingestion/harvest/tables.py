"""Harvest record shapes as they land: declared types, keys, change cursors and contracts."""

from __future__ import annotations

import polars as pl

from ingestion.records import BOOLEAN, NUMBER, STRING, Schema, TableSpec

S, F, INT, B = pl.String, pl.Float64, pl.Int64, pl.Boolean
REF = pl.Struct({"id": INT, "name": S})
CLIENT_REF = pl.Struct({"id": INT, "name": S, "currency": S})
PROJECT_REF = pl.Struct({"id": INT, "name": S, "code": S})
INVOICE_REF = pl.Struct({"id": INT, "number": S})
STAMPS: Schema = {"created_at": S, "updated_at": S}

TABLES = (
    TableSpec(
        "users",
        ("id",),
        {
            "id": INT,
            "first_name": S,
            "last_name": S,
            "email": S,
            "is_active": B,
            "is_contractor": B,
            "weekly_capacity": INT,
            "default_hourly_rate": F,
            "cost_rate": F,
            "roles": pl.List(S),
            **STAMPS,
        },
        cursor="updated_at",
    ),
    TableSpec(
        "clients",
        ("id",),
        {"id": INT, "name": S, "is_active": B, "currency": S, "address": S, **STAMPS},
        cursor="updated_at",
    ),
    TableSpec(
        "projects",
        ("id",),
        {
            "id": INT,
            "name": S,
            "code": S,
            "client": CLIENT_REF,
            "is_active": B,
            "is_billable": B,
            "bill_by": S,
            "budget": F,
            "starts_on": S,
            "ends_on": S,
            "notes": S,
            **STAMPS,
        },
        cursor="updated_at",
    ),
    TableSpec(
        "tasks",
        ("id",),
        {"id": INT, "name": S, "billable_by_default": B, "default_hourly_rate": F, "is_active": B, **STAMPS},
        cursor="updated_at",
    ),
    TableSpec(
        "time_entries",
        ("id",),
        {
            "id": INT,
            "spent_date": S,
            "hours": F,
            "rounded_hours": F,
            "notes": S,
            "is_locked": B,
            "locked_reason": S,
            "is_closed": B,
            "is_billed": B,
            "is_running": B,
            "billable": B,
            "budgeted": B,
            "billable_rate": F,
            "cost_rate": F,
            "approval_status": S,
            "submitted_at": S,
            "approved_at": S,
            "user": REF,
            "client": CLIENT_REF,
            "project": PROJECT_REF,
            "task": REF,
            "invoice": INVOICE_REF,
            "external_reference": S,
            **STAMPS,
        },
        cursor="updated_at",
        critical={
            "hours": NUMBER,
            "billable_rate": NUMBER,
            "cost_rate": NUMBER,
            "billable": BOOLEAN,
            "spent_date": STRING,
            "updated_at": STRING,
            "user.id": NUMBER,
            "project.id": NUMBER,
        },
        finance_critical=True,
    ),
    TableSpec(
        "expenses",
        ("id",),
        {
            "id": INT,
            "spent_date": S,
            "total_cost": F,
            "units": F,
            "notes": S,
            "billable": B,
            "is_locked": B,
            "is_billed": B,
            "approval_status": S,
            "submitted_at": S,
            "approved_at": S,
            "user": REF,
            "client": CLIENT_REF,
            "project": PROJECT_REF,
            "expense_category": REF,
            "invoice": INVOICE_REF,
            **STAMPS,
        },
        cursor="updated_at",
        critical={
            "total_cost": NUMBER,
            "billable": BOOLEAN,
            "spent_date": STRING,
            "updated_at": STRING,
            "user.id": NUMBER,
            "project.id": NUMBER,
        },
        finance_critical=True,
    ),
)

# Lists that can lose records without a trace (Harvest has no deletions feed): re-scanned by date.
DATED = ("time_entries", "expenses")
