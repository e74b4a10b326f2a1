"""Exceptions: the queue by owner and rule with aging (since first detected, and business age since
the record's own date) and money at stake; filter, sort, drill down, download."""

from __future__ import annotations

import json
from functools import partial

import pandas as pd
import streamlit as st

from dashboards import ui
from dashboards.queries import exceptions as q
from dashboards.queries.connection import parse_time
from dashboards.queries.filters import Filters, reporting_currency

filters = ui.page(
    "Exceptions",
    "Records that must not flow silently: each rule has an owner team; blocking ones hold time back "
    "from billing. The queue is what is open now (all dates); the global entity, practice and client "
    "filters apply.",
    needs_period=False,
)


def render(filters: Filters) -> None:
    everything = q.exception_queue(filters)
    if everything.empty:
        st.success("No open exceptions for this selection.", icon=":material/check_circle:")
        return
    left, middle, right, sort_box = st.columns([1, 1, 1, 1])
    owners = left.multiselect(
        "Owner",
        sorted(everything["owner"].dropna().unique()),
        placeholder="All owners",
        key="exceptions_owner",
    )
    rules = middle.multiselect(
        "Rule", sorted(everything["rule_code"].unique()), placeholder="All rules", key="exceptions_rule"
    )
    buckets = right.multiselect(
        "Age (days)", list(q.EXCEPTION_AGE_BUCKETS), placeholder="All ages", key="exceptions_age"
    )
    sort = sort_box.selectbox("Sort", list(q.SORTABLE), key="exceptions_sort")
    queue = q.exception_queue(filters, owners=owners, rules=rules, buckets=buckets, sort=sort)

    currency = reporting_currency()
    tiles = st.columns(5)
    with tiles[0]:
        ui.tile("Open exceptions", len(queue), None, ui.count, help="Open now, after the filters above.")
    with tiles[1]:
        ui.tile("Blocking billing", int(queue["is_blocking"].sum()), None, ui.count)
    with tiles[2]:
        ui.tile("Older than 30 days", int((queue["age_bucket"] == "30+").sum()), None, ui.count)
    with tiles[3]:
        ui.tile(
            "Median age",
            queue["age_days"].median() if len(queue) else None,
            None,
            ui.days,
            help="Since first detected by a pipeline run. The business age (since the day worked, "
            "the invoice or the account's date) is in the queue.",
        )
    with tiles[4]:
        ui.tile(
            "Money at stake",
            pd.to_numeric(queue["amount_at_stake_reporting"], errors="coerce").sum() if len(queue) else None,
            None,
            lambda value: ui.money(value, currency),
            help="What the open exceptions are about, at the bill rate or line amount, in "
            f"{currency}; exceptions nothing values (no rate, a rate-card version, a CRM "
            "account) add nothing.",
        )

    if ui.is_empty(queue, "No open exceptions match these filters."):
        return
    charts = st.columns(2)
    by_owner = queue.groupby(["owner", "age_bucket"], as_index=False).size()
    with charts[0]:
        figure = ui.stacked_bars(
            by_owner,
            "owner",
            "age_bucket",
            "size",
            title="Open exceptions by owner and age (days since first detected)",
            category_title="owner team",
            value_title="open exceptions (count)",
            stack_order=q.EXCEPTION_AGE_BUCKETS,
            colours=ui.BUCKET_COLOURS,
        )
        ui.show(figure, key="exceptions_by_owner")
    by_rule = queue.groupby(["rule_code", "age_bucket"], as_index=False).size()
    with charts[1]:
        figure = ui.stacked_bars(
            by_rule,
            "rule_code",
            "age_bucket",
            "size",
            title="Open exceptions by rule and age (days)",
            category_title="rule",
            value_title="open exceptions (count)",
            stack_order=q.EXCEPTION_AGE_BUCKETS,
            colours=ui.BUCKET_COLOURS,
            horizontal=True,
        )
        ui.show(figure, key="exceptions_by_rule")

    blocking_label = {True: "blocking", False: "not blocking"}
    at_stake = (
        queue.assign(
            blocking=queue["is_blocking"].fillna(False).astype(bool).map(blocking_label),
            amount=pd.to_numeric(queue["amount_at_stake_reporting"], errors="coerce").fillna(0.0),
        )
        .groupby(["owner", "blocking"], as_index=False)["amount"]
        .sum()
    )
    if at_stake["amount"].abs().sum() > 0:
        figure = ui.stacked_bars(
            at_stake,
            "owner",
            "blocking",
            "amount",
            title=f"Money at stake per owner ({currency}, open exceptions)",
            category_title="owner team",
            value_title=f"amount at stake ({currency})",
            stack_order=("blocking", "not blocking"),
        )
        ui.show(figure, key="exceptions_money_by_owner")
    else:
        st.caption("No money at stake: none of these exceptions has a value (no rate, or not time).")

    st.subheader("The queue")
    st.caption("Select a row to see the offending record with its source-system ids.")
    shown = queue[
        [
            "rule_code",
            "owner",
            "severity",
            "is_blocking",
            "amount_at_stake_reporting",
            "age_days",
            "age_bucket",
            "business_age_days",
            "record_type",
            "record_id",
            "source_ids",
            "reason",
            "occurred_on",
            "legal_entity",
            "client_name",
            "project_code",
        ]
    ]
    selection = st.dataframe(
        shown,
        hide_index=True,
        on_select="rerun",
        selection_mode="single-row",
        key="exception_queue",
        column_config={
            "rule_code": "Rule",
            "owner": "Owner",
            "severity": "Severity",
            "is_blocking": st.column_config.CheckboxColumn("Blocking"),
            "amount_at_stake_reporting": st.column_config.NumberColumn(
                f"At stake ({currency})", format="%.2f"
            ),
            "age_days": st.column_config.NumberColumn("Age (days since detected)"),
            "age_bucket": "Bucket",
            "business_age_days": st.column_config.NumberColumn("Business age (days)"),
            "record_type": "Record type",
            "record_id": "Record id",
            "source_ids": st.column_config.TextColumn("Source-system ids", width="large"),
            "reason": st.column_config.TextColumn("Reason", width="large"),
            "occurred_on": st.column_config.DateColumn("Occurred on"),
            "legal_entity": "Entity",
            "client_name": "Client",
            "project_code": "Project",
        },
    )
    owner_label = "-".join(owners) if owners else "all-owners"
    ui.download(
        queue.drop(columns=["details"]),
        f"Download these {len(queue):,} exceptions (CSV)",
        f"billable-exceptions-{owner_label}.csv",
        key="download_exceptions",
    )

    labels = {  # the first 500 in the chosen order; filter to reach the others
        row.exception_id: f"{row.rule_code} · {row.record_type} {row.record_id}"
        for row in queue.head(500).itertuples(index=False)
    }
    rows = selection.selection.rows if selection is not None else []
    chosen = st.selectbox(
        "Drill down into an exception",
        list(labels),
        index=None,
        format_func=lambda key: labels.get(key, str(key)),
        placeholder="Select a row above, or pick one here",
        key="exceptions_drill",
    )
    if rows:
        drill_down(queue.iloc[rows[0]])
    elif chosen is not None:
        drill_down(queue[queue["exception_id"] == chosen].iloc[0])


def drill_down(row: pd.Series) -> None:
    st.subheader(f"{row['rule_code']} · {row['record_type']} {row['record_id']}")
    st.markdown(f"**Reason:** {row['reason']}")
    st.markdown(f"**Rule:** {row['rule_reason']} (owner {row['owner']}, severity {row['severity']})")
    st.markdown(f"**Find it in {row['source_system'] or 'the source system'}:** `{row['source_ids']}`")
    first = parse_time(row["first_detected_at"])
    st.caption(
        (
            f"First detected {first:%Y-%m-%d %H:%M} UTC, {row['age_days']} days ago"
            if first
            else "First detection time unknown"
        )
        + (
            f"; the record's own date is {row['business_age_days']} days old"
            if not pd.isna(row["business_age_days"])
            else ""
        )
    )
    details = row["details"]
    if isinstance(details, str) and details:
        try:
            st.json(json.loads(details), expanded=True)
        except json.JSONDecodeError:
            st.code(details)
    records = q.exception_record(str(row["exception_id"]))
    entry = records.get("time_entry")
    if entry is not None and not entry.empty:
        st.markdown("**The time entry** (fct_time_entries)")
        st.dataframe(entry, hide_index=True)


if filters is not None:
    ui.guarded(partial(render, filters), "The exception queue")
