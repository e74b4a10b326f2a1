"""Shared building blocks of the pages: global filters, freshness, tiles, charts, empty states."""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from datetime import UTC, date, datetime
from typing import Any, Literal

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from dashboards import excel, settings
from dashboards.queries import connection as db
from dashboards.queries.access import Access, NotPermitted
from dashboards.queries.filters import (
    Filters,
    add_months,
    as_of_date,
    currencies,
    data_months,
    filter_choices,
    ignored_filters,
    month_end,
    month_start,
)
from dashboards.queries.semantic import MetricUndefined

PERIODS = {"Month": 1, "3 months": 3, "Year to date": 0, "12 months": 12}

# Colours used the same way on every page (an executive learns them once).
GOOD, BAD, NEUTRAL, ACCENT = "#2e7d32", "#c62828", "#607d8b", "#1f4e79"
BUCKET_COLOURS = {
    "0-2": "#90caf9",
    "3-7": "#42a5f5",
    "8-30": "#ef6c00",
    "30+": "#c62828",
    "0-30": "#90caf9",
    "31-60": "#42a5f5",
    "61-90": "#ef6c00",
    "90+": "#c62828",
}


# --- messages instead of tracebacks ------------------------------------------------------------


def no_warehouse_message(path: str) -> None:
    st.info(
        f"**No warehouse has been published yet** at `{path}`.\n\n"
        "Run `make pipeline` (or `make transform` after `make ingest`) to build and publish one; "
        "this page fills in as soon as the file appears (reload the page).",
        icon=":material/hourglass_empty:",
    )


def guarded(render: Callable[[], Any], what: str, *, compact: bool = False) -> Any:
    """Render a section; a missing warehouse, a missing mart or a read error becomes a message.

    `compact` (KPI tiles): a bordered box with the figure's name and a one-line reason.
    """
    try:
        return render()
    except db.WarehouseUnavailable as error:
        st.warning(f"**{what}**: the warehouse cannot be read right now ({error}). Try again shortly.")
    except db.MartMissing as error:
        names = ", ".join(f"`{name}`" for name in error.relations)
        if compact:
            with st.container(border=True):
                st.markdown(f"**{what}**")
                st.caption(f"Not available yet: {names} is not in this warehouse.")
            return None
        st.info(
            f"**{what}** is not available in this warehouse: {names} "
            f"{'is' if len(error.relations) == 1 else 'are'} not built. "
            "It appears after the next `make transform` that includes "
            f"{'it' if len(error.relations) == 1 else 'them'}.",
            icon=":material/construction:",
        )
    except NotPermitted:
        if compact:
            with st.container(border=True):
                st.markdown(f"**{what}**")
                st.caption("Not shown for your role.")
            return None
        st.info(
            f"**{what}** is not shown for your role ({db.current_access().describe()}).",
            icon=":material/lock:",
        )
    except MetricUndefined as error:
        st.error(f"**{what}** could not be computed: {error}.")
    except db.READ_ERRORS as error:
        st.error(f"**{what}** could not be computed: {type(error).__name__}: {error}")
    return None


# --- global filters -----------------------------------------------------------------------------


def _month_label(day: date) -> str:
    return day.strftime("%b %Y")


# Filters live in the URL (?page=wip_billing&period=3-months&end=2026-05&practice=Strategy&...), so a
# link shows the same view; a value the visitor's role may not see is refused with a message, never
# applied. `page` repeats the page's path because the path does not survive the sign-in form.
PERIOD_PARAMS = {"month": "Month", "3-months": "3 months", "ytd": "Year to date", "12-months": "12 months"}
_PERIOD_PARAM_OF = {label: param for param, label in PERIOD_PARAMS.items()}
_URL_SEEDED = "_filters_from_url"


def _seed_from_url(
    choices: list[date], options: dict[str, list], offered: list[str], access: Access
) -> list[str]:
    """Once per session, before the widgets exist: the URL's filters become the widgets' values.
    Returns what was refused (unknown values, or values outside the role's scope)."""
    params = st.query_params
    refused: list[str] = []
    page = params.get("page")
    if page is not None:
        if page in access.pages:
            st.session_state["_requested_page"] = page  # app.py opens it
        else:
            refused.append(f"page={page}")
    kind = params.get("period")
    if kind is not None:
        if kind in PERIOD_PARAMS:
            st.session_state["filter_period_kind"] = PERIOD_PARAMS[kind]
        else:
            refused.append(f"period={kind}")
    end = params.get("end")
    if end is not None:
        found = [month for month in choices if month.strftime("%Y-%m") == end]
        if found:
            st.session_state["filter_period_end"] = found[0]
        else:
            refused.append(f"end={end}")
    client_ids = [client_id for client_id, _name in options.get("client", [])]
    for param, key, allowed in (
        ("entity", "filter_entity", options.get("legal_entity", [])),
        ("practice", "filter_practice", options.get("practice", [])),
        ("region", "filter_region", options.get("region", [])),
        ("client", "filter_client", client_ids),
    ):
        values = params.get_all(param)
        if not values:
            continue
        # the choices themselves are read through the role's scope: a practice or client outside
        # it is not among them, so a URL can never widen what the role sees
        refused += [f"{param}={value}" for value in values if value not in allowed]
        kept = [value for value in values if value in allowed]
        if kept:
            st.session_state[key] = kept
    currency = params.get("currency")
    if currency is not None:
        if currency in offered:
            st.session_state["filter_currency"] = currency
        else:
            refused.append(f"currency={currency}")
    return refused


def _write_url(filters: Filters, kind: str, end_month: date, page: str) -> None:
    wanted: dict[str, str | list[str]] = {
        "page": page,
        "period": _PERIOD_PARAM_OF[kind],
        "end": end_month.strftime("%Y-%m"),
    }
    for param, values in (
        ("entity", filters.legal_entities),
        ("practice", st.session_state.get("filter_practice") or []),
        ("region", filters.regions),
        ("client", filters.clients),
    ):
        if values:
            wanted[param] = list(values)
    wanted["currency"] = filters.currency
    current = {key: st.query_params.get_all(key) for key in st.query_params}
    normal = {key: value if isinstance(value, list) else [value] for key, value in wanted.items()}
    if current != normal:
        st.query_params.from_dict(wanted)


def sidebar_filters(access: Access, page: str = "overview") -> Filters | None:
    """The global filters in the sidebar, seeded from and written to the URL (with the `page`
    shown); None when there is no warehouse to filter. Their choices are read within the visitor's
    access, so they offer only what the role may see."""
    snap = db.snapshot()
    if not snap.exists or db.unreadable():
        return None
    months = guarded(data_months, "Period choices")
    as_of = guarded(as_of_date, "As-of date")
    if not months:
        return None
    first, last = months
    choices = []
    cursor = last
    while cursor >= first:
        choices.append(cursor)
        cursor = add_months(cursor, -1)
    default_end = add_months(month_start(as_of), -1) if as_of else last
    default_index = choices.index(default_end) if default_end in choices else 0
    options = guarded(filter_choices, "Filter choices") or {}
    offered = guarded(currencies, "Currencies") or ["USD"]

    sidebar = st.sidebar
    if st.session_state.get("_filters_access") != access:
        # another user signed in in this browser session: start from their link, not the last
        # user's choices (which may lie outside this user's scope)
        for key in [key for key in st.session_state if str(key).startswith("filter_")]:
            del st.session_state[key]
        st.session_state[_URL_SEEDED] = False
        st.session_state["_filters_access"] = access
    if not st.session_state.get(_URL_SEEDED):
        st.session_state[_URL_SEEDED] = True
        # kept for the session: sign-in reruns the script right after the link was read
        st.session_state["_url_refused"] = _seed_from_url(choices, options, offered, access)
    refused = st.session_state.get("_url_refused")
    if refused:
        sidebar.warning(
            f"Ignored from the link: {', '.join(refused)} (not a value you can see"
            f"{' as ' + access.describe() if access.practices else ''}).",
            icon=":material/block:",
        )
    sidebar.markdown("**Filters**")
    kind = sidebar.segmented_control(
        "Period",
        list(PERIODS),
        default=None if "filter_period_kind" in st.session_state else "Month",
        key="filter_period_kind",
        width="stretch",
    )
    kind = kind or "Month"
    end_month = sidebar.selectbox(
        "Ending",
        choices,
        index=0 if "filter_period_end" in st.session_state else default_index,
        format_func=_month_label,
        key="filter_period_end",
    )
    length = PERIODS[kind] or end_month.month
    start = add_months(end_month, -(length - 1))
    entities = sidebar.multiselect(
        "Legal entity", options.get("legal_entity", []), key="filter_entity", placeholder="All"
    )
    practices = sidebar.multiselect(
        "Practice",
        options.get("practice", []),
        key="filter_practice",
        placeholder=", ".join(access.practices) if access.practices else "All",
    )
    regions = sidebar.multiselect("Region", options.get("region", []), key="filter_region", placeholder="All")
    client_names = dict(options.get("client", []))
    clients = sidebar.multiselect(
        "Client",
        list(client_names),
        format_func=lambda client_id: client_names.get(client_id, client_id),
        key="filter_client",
        placeholder="All",
    )
    currency = sidebar.selectbox("Reporting currency", offered, key="filter_currency")
    if access.practices:  # the role's practices are the filter when none is chosen (the captions say so)
        practices = [name for name in practices if name in access.practices] or list(access.practices)
    filters = Filters(
        start=start,
        end=month_end(end_month),
        legal_entities=tuple(entities),
        practices=tuple(practices),
        regions=tuple(regions),
        clients=tuple(clients),
        currency=currency,
        year_on_year=PERIODS[kind] == 0,
    )
    _write_url(filters, kind, end_month, page)
    return filters


def period_label(filters: Filters) -> str:
    if filters.months == 1:
        return _month_label(filters.start)
    return f"{_month_label(filters.start)} – {_month_label(filters.end)}"


def scope_caption(filters: Filters) -> None:
    parts = [f"Period **{period_label(filters)}**"]
    for label, values in (
        ("legal entity", filters.legal_entities),
        ("practice", filters.practices),
        ("region", filters.regions),
        ("client", filters.clients),
    ):
        if values:
            parts.append(f"{label}: {', '.join(values)}")
    parts.append(f"amounts in **{filters.currency}**")
    st.caption(" · ".join(parts))


def not_applied(filters: Filters, applies: Collection[str]) -> None:
    """Name the filters the user set that this page's data cannot apply (legal_entity, practice, ...)."""
    ignored = ignored_filters(filters, applies)
    if ignored:
        st.caption(f"Not filtered by {', '.join(ignored)}: this data has no such attribute.")


# --- freshness ----------------------------------------------------------------------------------


def _ago(moment: datetime | None) -> str:
    if moment is None:
        return "never"
    now = datetime.now(UTC)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    minutes = (now - moment).total_seconds() / 60
    if minutes < 1:
        return "just now"
    if minutes < 120:
        return f"{minutes:.0f} min ago"
    if minutes < 48 * 60:
        return f"{minutes / 60:.0f} h ago"
    return f"{minutes / 1440:.0f} days ago"


def _fmt_time(moment: datetime | None) -> str:
    return "—" if moment is None else moment.strftime("%Y-%m-%d %H:%M UTC")


def freshness_panel() -> None:
    """Data freshness in the sidebar on every page, and a warning on top when something failed."""
    snap = db.snapshot()
    box = st.sidebar.container(border=True)
    box.markdown("**Data freshness**")
    if not snap.exists:
        box.caption("No warehouse published yet.")
        return
    if db.unreadable():
        box.caption("The warehouse cannot be read.")
        return
    fresh = guarded(db.freshness, "Data freshness")
    if fresh is None:
        return
    published = db.parse_time(fresh.published_at)
    if published is None and fresh.last_good_build is not None:
        published = db.parse_time(fresh.last_good_build["finished_at"])
    box.caption(f"Warehouse built **{_ago(published)}** ({_fmt_time(published)})")
    as_of = guarded(as_of_date, "As-of date")
    if as_of:
        box.caption(f"Data as of **{as_of:%d %b %Y}**")
    loaded = fresh.sources
    if not loaded.empty:
        last_loaded = db.parse_time(loaded["last_loaded_at"].max())
        box.caption(f"Last successful load **{_ago(last_loaded)}** ({_fmt_time(last_loaded)})")
        failed = loaded[loaded["last_status"] == "failed"]
        for row in failed.itertuples(index=False):
            box.caption(f":red[**{row.source_name}** failed at its last load]")
    else:
        box.caption("No load recorded in the load log.")
    if fresh.run_id:
        box.caption(f"Build `{fresh.run_id}`")


def freshness_line() -> None:
    """One line under every page title: how old the data is (the sidebar has the detail)."""
    fresh = guarded(db.freshness, "Data freshness")
    if fresh is None:
        return
    parts = []
    as_of = guarded(as_of_date, "As-of date")
    if as_of:
        parts.append(f"data as of **{as_of:%d %b %Y}**")
    published = db.parse_time(fresh.published_at)
    if published is None and fresh.last_good_build is not None:
        published = db.parse_time(fresh.last_good_build["finished_at"])
    parts.append(f"warehouse built {_ago(published)}")
    if not fresh.sources.empty:
        parts.append(f"last successful load {_ago(db.parse_time(fresh.sources['last_loaded_at'].max()))}")
        failed = int((fresh.sources["last_status"] == "failed").sum())
        if failed:
            parts.append(f":red[{failed} source(s) failed at the last load]")
    st.caption(":material/schedule: " + " · ".join(parts))


def stale_warning(published: datetime | None) -> None:
    """Warn when the published data is older than the configured age (settings.stale_after_hours)."""
    try:
        limit = settings.stale_after_hours()
    except ValueError as error:
        st.error(f"**Stale-data check is misconfigured**: {error}.")
        return
    if published is None:
        return
    if published.tzinfo is None:
        published = published.replace(tzinfo=UTC)
    age_h = (datetime.now(UTC) - published).total_seconds() / 3600
    if age_h <= limit:
        return
    age = f"{age_h:.0f} hours" if age_h < 72 else f"{age_h / 24:.1f} days"
    st.warning(
        f"**The data is stale**: the published warehouse is {age} old (published {_fmt_time(published)}), "
        f"older than the {limit:g} h allowed. The daily run may have stopped or failed: see Pipeline "
        f"health. ({settings.STALE_AFTER_ENV} sets the age.)",
        icon=":material/history:",
    )


def freshness_warnings() -> None:
    """Top-of-page warnings: stale data, a source down at the last load, or the latest build failed."""
    if not db.snapshot().exists:
        return
    fresh = guarded(db.freshness, "Data freshness")
    if fresh is None:
        return
    published = db.parse_time(fresh.published_at)
    if published is None and fresh.last_good_build is not None:
        published = db.parse_time(fresh.last_good_build["finished_at"])
    stale_warning(published)
    failed = fresh.sources[fresh.sources["last_status"] == "failed"] if not fresh.sources.empty else None
    if failed is not None and not failed.empty:
        lines = []
        for row in failed.itertuples(index=False):
            good = db.parse_time(row.last_loaded_at)
            since = f"its data is as of the load of {_fmt_time(good)}" if good else "it has never loaded"
            lines.append(f"- **{row.source_name}**: {row.last_error or 'failed'} ({since})")
        st.warning(
            "**A source failed at the last load**; figures that depend on it may be stale.\n"
            + "\n".join(lines),
            icon=":material/cloud_off:",
        )
    build = fresh.last_build
    if build is not None and build["status"] != "passed":
        good = fresh.last_good_build
        shown = _fmt_time(db.parse_time(good["finished_at"])) if good is not None else "none"
        st.warning(
            f"**The latest build failed** ({_fmt_time(db.parse_time(build['started_at']))}: "
            f"{build['message'] or 'see Pipeline health'}). Showing the last good build ({shown}).",
            icon=":material/error:",
        )


# --- numbers ------------------------------------------------------------------------------------


def money(value: Any, currency: str, *, compact: bool = True) -> str:
    number = db.finite(value)
    if number is None:
        return "—"
    if compact and abs(number) >= 1_000_000:
        return f"{currency} {number / 1_000_000:,.2f}M"
    if compact and abs(number) >= 10_000:
        return f"{currency} {number / 1_000:,.1f}k"
    return f"{currency} {number:,.2f}"


def percent(value: Any, digits: int = 1) -> str:
    number = db.finite(value)
    return "—" if number is None else f"{number * 100:.{digits}f}%"


def points(value: Any, digits: int = 1) -> str:
    """A difference of two rates in percentage points: -0.123 -> "-12.3 pts"."""
    number = db.finite(value)
    return "—" if number is None else f"{number * 100:+.{digits}f} pts"


def days(value: Any) -> str:
    number = db.finite(value)
    return "—" if number is None else f"{number:.1f} days"


def count(value: Any) -> str:
    number = db.finite(value)
    return "—" if number is None else f"{number:,.0f}"


def tile(
    label: str,
    value: Any,
    previous: Any,
    formatter: Callable[[Any], str],
    *,
    spark: Sequence[float] | None = None,
    delta_kind: str = "percent",
    higher_is_better: bool | None = True,
    help: str | None = None,
    delta_description: str | None = "vs previous period",
    no_comparison: str | None = None,
) -> None:
    """A KPI tile: the value, its change versus the previous period, and a sparkline.

    `no_comparison` (e.g. "no comparison: history starts Jul 2026") replaces the change when the
    data does not cover the previous period (dashboards/queries/coverage.py), in grey, no arrow.
    """
    points = [p for p in (db.finite(v) for v in (spark or [])) if p is not None]
    if no_comparison:
        st.metric(
            label,
            formatter(value),
            delta=no_comparison,
            delta_color="off",
            delta_arrow="off",
            help=help,
            border=True,
            chart_data=points if len(points) > 1 else None,
            chart_type="area",
        )
        return
    current, before = db.finite(value), db.finite(previous)
    delta = None
    if current is not None and before is not None:
        if delta_kind == "points":
            delta = f"{(current - before) * 100:+.1f} pts"
        elif delta_kind == "days":
            delta = f"{current - before:+.1f} days"
        elif delta_kind == "count":
            delta = f"{current - before:+,.0f}"
        elif before != 0:
            delta = f"{(current - before) / abs(before) * 100:+.1f}%"
    colour: Literal["off", "normal", "inverse"] = (
        "off" if higher_is_better is None else ("normal" if higher_is_better else "inverse")
    )
    st.metric(
        label,
        formatter(value),
        delta=delta,
        delta_color=colour,
        help=help,
        border=True,
        chart_data=points if len(points) > 1 else None,
        chart_type="area",
        delta_description=delta_description if delta else None,
    )


# --- charts -------------------------------------------------------------------------------------


def is_empty(frame: pd.DataFrame | None, message: str) -> bool:
    """Show an empty-state note and return True when there is nothing to chart."""
    if frame is None or frame.empty:
        st.info(message, icon=":material/filter_alt_off:")
        return True
    return False


def show(figure: go.Figure, *, key: str | None = None, monthly: bool = False, height: int = 360) -> None:
    """Draw a Plotly figure in the house style; `monthly`: one x tick per month, labelled 'Sep 2026'."""
    if monthly:
        figure.update_xaxes(dtick="M1", tickformat="%b %Y")
    figure.update_xaxes(automargin=True)  # long tick labels push the margin, not onto each other
    figure.update_yaxes(automargin=True)
    figure.update_layout(
        margin={"l": 10, "r": 10, "t": 50, "b": 10},
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.0, "x": 0, "title": None},
        title={"x": 0, "xanchor": "left", "font": {"size": 16}},
        height=height,
    )
    st.plotly_chart(figure, key=key, config={"displaylogo": False})


def series_figure(
    kind: str,
    x: Any,
    series: dict[str, Any],
    *,
    title: str,
    x_title: str,
    y_title: str,
    barmode: str = "group",
) -> go.Figure:
    """Lines or bars of a few named series over one x axis, built with graph_objects directly
    (Plotly Express builds the same figure several times slower, which shows on page loads)."""
    figure = go.Figure()
    if len(x) and all(isinstance(value, str) for value in x):  # categories: wrap long names
        x = [wrap(value, 14) for value in x]
    for name, values in series.items():
        if kind == "bar":
            figure.add_bar(x=x, y=values, name=name)
        else:
            figure.add_scatter(x=x, y=values, name=name, mode="lines+markers")
    figure.update_layout(
        title=title, barmode=barmode, xaxis_title=x_title, yaxis_title=y_title, showlegend=len(series) > 1
    )
    return figure


def stacked_bars(
    frame: pd.DataFrame,
    category: str,
    stack: str,
    value: str,
    *,
    title: str,
    category_title: str,
    value_title: str,
    stack_order: Sequence[str] | None = None,
    colours: dict[str, str] | None = None,
    horizontal: bool = False,
) -> go.Figure:
    """Bars per category, stacked by a second column (bucket, entity, source), largest total first."""
    totals = frame.groupby(category, dropna=False)[value].sum().sort_values(ascending=horizontal)
    categories = [str(name) for name in totals.index]
    figure = go.Figure()
    stacks = list(stack_order) if stack_order else sorted(frame[stack].dropna().unique())
    for name in stacks:
        part = frame[frame[stack] == name].groupby(category, dropna=False)[value].sum()
        part.index = [str(index) for index in part.index]
        values = [float(part.get(item, 0.0)) for item in categories]
        if not any(values):
            continue
        marker = {"color": colours[name]} if colours and name in colours else None
        if horizontal:
            figure.add_bar(y=categories, x=values, name=str(name), orientation="h", marker=marker)
        else:
            figure.add_bar(x=categories, y=values, name=str(name), marker=marker)
    axis_titles = (
        {"xaxis_title": value_title, "yaxis_title": category_title}
        if horizontal
        else {
            "xaxis_title": category_title,
            "yaxis_title": value_title,
        }
    )
    figure.update_layout(title=title, barmode="stack", legend_traceorder="normal", **axis_titles)
    return figure


# One display convention per measure in every table (the frames keep raw numbers, so CSV and
# Excel downloads hold the values): money with thousands separators and cents, hours and days
# with one decimal, counts whole, rates as percentages.
MONEY_FORMAT, HOURS_FORMAT, DAYS_FORMAT, COUNT_FORMAT = "%,.2f", "%,.1f", "%,.1f", "%,d"

# Headers for the marts' column names (the rest: underscores to spaces, "_reporting" to the
# currency); ids are hidden where a name stands beside them.
HEADERS = {
    "billable_utilization": "billable utilisation",
    "productive_utilization": "productive utilisation",
    "total_utilization": "total utilisation",
    "target_billable_utilization": "target",
    "billable_utilization_variance": "variance to target",
    "submission_compliance": "submitted on time",
    "gross_margin_pct": "margin %",
    "realization_rate": "realisation",
    "billed_time_realization_rate": "realisation on billed time",
    "month_start_date": "month",
    "full_name": "person",
    "employee_name": "person",
    "client_name": "client",
    "project_code": "project code",
    "project_name": "project",
    "contract_number": "contract",
    "legal_entity": "legal entity",
    "billing_method": "billing method",
    "currency_code": "currency",
    "days_worked_to_invoice": "days worked → invoiced",
    "days_approved_to_invoice": "days approved → invoiced",
    "erp_invoice_key": "invoice",
    "doc_number": "invoice number",
    "days_overdue": "days overdue",
}
NAMED_IDS = {
    "employee_id": ("full_name", "employee_name"),
    "client_id": ("client_name",),
    "project_id": ("project_name", "project_code"),
    "contract_id": ("contract_number",),
}


def header(column: str, currency: str | None = None) -> str:
    """A readable header for a mart column: `recognized_amount_reporting` -> "recognized amount (USD)"."""
    if column in HEADERS:
        return HEADERS[column]
    text = str(column)
    if text.endswith("_reporting"):
        text = text.removesuffix("_reporting").removesuffix("_amount") + f" ({currency or 'reporting'})"
    elif text.endswith("_amount"):
        text = text.removesuffix("_amount") + " (transaction currency)"
    return text.replace("_", " ")


def money_column(label: str) -> Any:
    return st.column_config.NumberColumn(label, format=MONEY_FORMAT)


def hours_column(label: str) -> Any:
    return st.column_config.NumberColumn(label, format=HOURS_FORMAT)


def percent_column(label: str) -> Any:
    return st.column_config.NumberColumn(label, format="percent")


def column_formats(
    frame: pd.DataFrame, *, percent: Collection[str] = (), currency: str | None = None
) -> dict[str, Any]:
    """Headers and display formats for a table through st.column_config: readable headers,
    ids hidden beside their names, the `percent` columns as percentages, money, hours, days and
    counts each in one convention. The frame keeps its raw values for the downloads."""
    formats: dict[str, Any] = {}
    columns = set(frame.columns)
    for column in frame.columns:
        name = str(column)
        label = header(name, currency)
        if name in NAMED_IDS and columns & set(NAMED_IDS[name]):
            formats[column] = None  # the name beside it says which one
        elif column in percent:
            formats[column] = percent_column(label)
        elif pd.api.types.is_bool_dtype(frame[column]) or not pd.api.types.is_numeric_dtype(frame[column]):
            formats[column] = label
        elif "hours" in name:
            formats[column] = hours_column(label)
        elif name.startswith("days") or name.endswith("_days"):
            formats[column] = st.column_config.NumberColumn(label, format=DAYS_FORMAT)
        elif pd.api.types.is_integer_dtype(frame[column]):
            formats[column] = st.column_config.NumberColumn(label, format=COUNT_FORMAT)
        else:
            formats[column] = (
                money_column(label)
                if "amount" in name or "reporting" in name
                else (st.column_config.NumberColumn(label, format="%,.2f"))
            )
    return formats


def wrap(text: str, width: int) -> str:
    """A chart label broken into lines of at most `width` characters (Plotly's <br>), so long
    category names do not overlap."""
    lines: list[str] = []
    for word in str(text).split():
        if lines and len(lines[-1]) + 1 + len(word) <= width:
            lines[-1] += " " + word
        else:
            lines.append(word)
    return "<br>".join(lines)


RATIO_COLUMNS = (
    "billable_utilization",
    "productive_utilization",
    "total_utilization",
    "target_billable_utilization",
    "submission_compliance",
    "billable_utilization_variance",
    "gross_margin_pct",
    "realization_rate",
)


def download(frame: pd.DataFrame, label: str, file_name: str, key: str) -> None:
    """The table as CSV and, beside it, as an Excel workbook (one sheet, numbers as numbers)."""
    row = st.container(horizontal=True)
    with row:
        st.download_button(
            label,
            frame.to_csv(index=False).encode("utf-8"),
            file_name=file_name,
            mime="text/csv",
            key=key,
            icon=":material/download:",
        )
        stem = file_name.removesuffix(".csv")
        sheets = {_sheet_title(stem): frame}
        st.download_button(
            "Excel",
            lambda: excel.workbook(sheets),  # built when clicked: no cost to the page's load
            file_name=f"{stem}.xlsx",
            mime=excel.MIME,
            key=f"{key}_xlsx",
            icon=":material/table_view:",
            help="The same rows as an Excel workbook: numbers as numbers, dates as dates.",
        )


def downloads(tables: dict[str, pd.DataFrame], stem: str, key: str) -> None:
    """Several tables of one section: a CSV per table and one Excel workbook, a sheet per table."""
    row = st.container(horizontal=True)
    with row:
        for index, (title, frame) in enumerate(tables.items()):
            st.download_button(
                f"{title} (CSV)",
                frame.to_csv(index=False).encode("utf-8"),
                file_name=f"{stem}-{index + 1}.csv",
                mime="text/csv",
                key=f"{key}_csv_{index}",
                icon=":material/download:",
            )
        st.download_button(
            "Excel (a sheet per table)",
            lambda: excel.workbook(tables),  # built when clicked
            file_name=f"{stem}.xlsx",
            mime=excel.MIME,
            key=f"{key}_xlsx",
            icon=":material/table_view:",
        )


def _sheet_title(stem: str) -> str:
    return stem.removeprefix("billable-").replace("-", " ") or "rows"


# Legal entities (and other categories with no good or bad) in calm, distinct colours: no red or
# green, which would read as a verdict on an entity.
CATEGORICAL = ("#1f4e79", "#5b9bd5", "#7f6a93", "#8c8c8c", "#4a7c8c", "#b39b6b", "#2f3e4e", "#a5b8d0")


def categorical_colours(values: Any) -> dict[str, str]:
    """A stable colour per category (sorted names, so an entity keeps its colour across charts)."""
    names = sorted({str(value) for value in values if value is not None and not pd.isna(value)})
    return {name: CATEGORICAL[index % len(CATEGORICAL)] for index, name in enumerate(names)}


# --- page frame ---------------------------------------------------------------------------------


def page(title: str, description: str, *, needs_period: bool = True) -> Filters | None:
    """Title, freshness warnings and the filters in force; None (with a message) if nothing to show."""
    st.title(title)
    st.caption(description)
    snap = db.snapshot()
    if not snap.exists:
        no_warehouse_message(snap.path)
        return None
    problem = db.unreadable()
    if problem:
        st.error(
            f"**The published warehouse cannot be read**: {problem}.\n\n"
            "If a build is being published right now, reload in a moment. Otherwise the file is "
            "damaged or is not a Billable warehouse: `make transform` publishes a new one.",
            icon=":material/database_off:",
        )
        return None
    freshness_line()
    freshness_warnings()
    filters = st.session_state.get("filters")
    if filters is None:
        if not needs_period:  # the page does not need a period: everything, unfiltered
            return Filters(start=date(1900, 1, 1), end=date(2999, 12, 31))
        if needs_period:
            st.info(
                "The warehouse holds no recorded time yet, so there is no period to show. "
                "It fills in after the first load with time entries.",
                icon=":material/hourglass_empty:",
            )
        return None
    if needs_period:
        scope_caption(filters)
    return filters
