"""Pipeline health: the last pipeline runs and their facts; the last ingest, transform and sync
runs; rejected ERP lines; quarantine."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboards import ui
from dashboards.queries import pipeline_health as q

filters = ui.page(
    "Pipeline health",
    "The runs that feed these dashboards: loads from each source system, the warehouse builds "
    "(every dbt test must pass before a build is published), the reverse-ETL sync to the ERP, "
    "and every record held back on the way.",
    needs_period=False,
)


def compact_rows(count) -> str:
    number = int(count or 0)
    if number >= 1_000_000:
        return f"{number / 1_000_000:.1f}M rows"
    if number >= 10_000:
        return f"{number / 1_000:.0f}k rows"
    return f"{number:,} rows"


def pipeline() -> None:
    runs = q.pipeline_runs()
    if ui.is_empty(runs, "No pipeline run has been recorded yet (`make daily`, `make pipeline`)."):
        return
    last = runs.iloc[0]
    columns = st.columns(4)
    outcome = str(last["outcome"])
    columns[0].metric("Last run", outcome, border=True)
    duration = last["duration_s"]
    columns[1].metric("Its duration", "—" if pd.isna(duration) else f"{duration:.0f} s", border=True)
    columns[2].metric("Rows loaded", f"{int(last['rows_loaded'] or 0):,}", border=True)
    columns[3].metric("Lines synced", f"{int(last['lines_synced'] or 0):,}", border=True)
    if outcome == "running":
        st.caption(
            "This build was made during that run, so the run shows as running, with the facts of "
            "the steps before the build; the next build records how it ended."
        )
    elif outcome in ("failed", "abandoned"):
        where = f" at step {last['failed_step']}" if last["failed_step"] else ""
        st.error(f"**The last run {outcome}**{where}: {last['message'] or ''} (log: `{last['log_path']}`)")
    facts = [
        ("Quarantined", last["rows_quarantined"]),
        ("Models built", last["models_built"]),
        ("Tests passed", last["tests_passed"]),
        ("Tests warned", last["tests_warned"]),
        ("Tests failed", last["tests_failed"]),
        ("Lines rejected", last["lines_rejected"]),
        ("Exceptions opened", last["exceptions_opened"]),
        ("Exceptions resolved", last["exceptions_resolved"]),
    ]
    st.caption(
        f"Run `{last['pipeline_run_id']}`: "
        + " · ".join(f"{name} **{int(value or 0):,}**" for name, value in facts)
    )
    st.dataframe(
        runs.drop(columns=["steps_json"]),
        hide_index=True,
        column_config={"duration_s": st.column_config.NumberColumn("duration (s)", format="%.1f")},
    )


def ingest() -> None:
    runs = q.ingest_runs()
    if ui.is_empty(runs, "No load has been recorded in the load log yet."):
        return
    latest = runs[runs["run_id"] == runs["run_id"].max()]
    columns = st.columns(len(latest))
    for column, row in zip(columns, latest.itertuples(index=False), strict=True):
        with column:
            status = "loaded" if row.status == "loaded" else "FAILED"
            st.metric(
                f"{row.source} · last load",
                compact_rows(row.row_count) if row.status == "loaded" else "failed",
                delta=f"{status} in {row.duration_s:.1f} s",
                delta_color="normal" if row.status == "loaded" else "inverse",
                delta_arrow="off",
                border=True,
            )
            if row.status != "loaded":
                st.caption(f":red[{row.error_message}]")
    figure = ui.stacked_bars(
        runs,
        "run_id",
        "source",
        "duration_s",
        title="Load duration per run and source (seconds)",
        category_title="ingest run",
        value_title="duration (s)",
    )
    figure.update_xaxes(categoryorder="category ascending")
    ui.show(figure, key="ingest_durations")
    st.dataframe(
        runs,
        hide_index=True,
        column_config={
            "duration_s": st.column_config.NumberColumn("duration (s)", format="%.1f"),
            "row_count": st.column_config.NumberColumn("rows", format="%d"),
        },
    )


def transform() -> None:
    runs = q.transform_runs()
    if ui.is_empty(runs, "No warehouse build has been recorded yet."):
        return
    failed = runs[runs["status"] != "passed"]
    columns = st.columns(4)
    last = runs.iloc[0]
    columns[0].metric("Last build", str(last["status"]), border=True)
    columns[1].metric("Its duration", f"{last['duration_s']:.0f} s", border=True)
    columns[2].metric("Failed builds (last 20)", f"{len(failed)}", border=True)
    warned = last.get("nodes_warned")
    warned = 0 if pd.isna(warned) else int(warned)  # null: a run recorded before warnings were
    columns[3].metric("Warnings in the last build", f"{warned}", border=True)
    if warned:
        st.warning(
            "The last build was published with warnings (data tests of severity warn that found "
            "rows):\n\n" + "\n".join(f"- {line}" for line in str(last["warnings"]).splitlines()),
            icon=":material/warning:",
        )
    st.dataframe(
        runs,
        hide_index=True,
        column_config={"duration_s": st.column_config.NumberColumn("duration (s)", format="%.1f")},
    )


def sync() -> None:
    runs = q.sync_runs()
    if runs.empty:
        st.info("No reverse-ETL sync has run yet (`make sync`).", icon=":material/hourglass_empty:")
    else:
        last = runs.iloc[0]
        columns = st.columns(4)
        columns[0].metric("Last sync", str(last["run_status"]), border=True)
        columns[1].metric("Lines acknowledged", f"{int(last['lines_acknowledged'] or 0):,}", border=True)
        columns[2].metric("Lines rejected", f"{int(last['lines_rejected'] or 0):,}", border=True)
        columns[3].metric("Dead letters", f"{int(last['lines_dead_letter'] or 0):,}", border=True)
        st.dataframe(runs, hide_index=True)


def rejected_lines() -> None:
    rejected = q.erp_rejections()
    letters = q.dead_letters()
    left, right = st.columns(2)
    left.metric("ERP lines rejected (open)", f"{len(rejected):,}", border=True)
    right.metric("Dead letters (no answer after every retry)", f"{len(letters):,}", border=True)
    if rejected.empty:
        st.caption("No pushed line is currently rejected by the ERP.")
    else:
        st.dataframe(rejected, hide_index=True)
    if not letters.empty:
        st.dataframe(letters, hide_index=True)


def quarantine() -> None:
    held = q.quarantine_summary()
    if held.empty:
        st.success("No record was refused by the loaders.", icon=":material/check_circle:")
        return
    outstanding = int(held["outstanding"].sum())
    left, right = st.columns(2)
    left.metric("Refused records still outstanding", f"{outstanding:,}", border=True)
    right.metric("Refused, since landed or deleted upstream", f"{int(held['resolved'].sum()):,}", border=True)
    st.caption(
        "The loaders ask for every outstanding record again on each run until it lands valid or the "
        "system no longer has it. HR drop-file rows cannot be asked for again: send a corrected file."
    )
    st.dataframe(held, hide_index=True)


if filters is not None:
    st.subheader("Runs (make daily, make pipeline)")
    ui.guarded(pipeline, "Pipeline runs")
    st.subheader("Ingest")
    ui.guarded(ingest, "Ingest runs")
    st.subheader("Transform (warehouse builds)")
    ui.guarded(transform, "Warehouse builds")
    st.subheader("Sync to the ERP (reverse ETL)")
    ui.guarded(sync, "Reverse-ETL sync runs")
    ui.guarded(rejected_lines, "Rejected ERP lines and dead letters")
    st.subheader("Quarantine (records the loaders refused)")
    ui.guarded(quarantine, "Quarantine")
