"""Roles: sign-in fails closed, each role sees only its rows and columns on every page, in every
export and through "trace a number", URL parameters never widen a scope, and a role without cost
rates cannot derive a person's cost rate from what it sees. On the tiny firm's real warehouse,
through Streamlit's AppTest and the query modules themselves (docs/dashboards.md, "Sign-in and roles").
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import duckdb
import pandas as pd
import pytest
import yaml

from billable.duckdb_config import duckdb_config
from dashboards.queries import connection as db
from dashboards.queries import exceptions as exceptions_q
from dashboards.queries import overview as overview_q
from dashboards.queries import revenue_margin as revenue_q
from dashboards.queries import wip_billing as wip_q
from dashboards.queries.access import (
    COST_COLUMN,
    OPERATIONS,
    ROW_RULES,
    Access,
    AccessConfigError,
    NotPermitted,
    Role,
)
from dashboards.queries.filters import Filters
from dashboards.users import add_user
from tests.dashboard_helpers import messages, metrics, run_page
from tests.ingest_helpers import ROOT

PRACTICE = "Strategy"
COOKIE = "a-test-secret-that-is-long-enough-0123456789"
PASSWORDS = {
    "ceo": "password-ceo-1",
    "cfo": "password-cfo-1",
    "lead": "password-lead-1",
    "dev": "password-dev-1",
}
ALL_TIME = Filters(start=date(2000, 1, 1), end=date(2099, 12, 31))
LEAD = Access(Role.PRACTICE_LEAD, (PRACTICE,))
DELIVERY = Access(Role.DELIVERY)


def sql(warehouse: Path, text: str, *params) -> pd.DataFrame:
    # the dashboard's own configuration: DuckDB refuses a second one on a file open in this process
    with duckdb.connect(str(warehouse), read_only=True, config=duckdb_config()) as connection:
        return connection.execute(text, list(params)).df()


@pytest.fixture
def warehouse(tiny_firm, monkeypatch) -> Path:
    monkeypatch.setenv("BILLABLE_WAREHOUSE", str(tiny_firm.warehouse))
    return tiny_firm.warehouse


@pytest.fixture
def users(tmp_path, monkeypatch) -> Path:
    """A users file written by the real CLI, one user per role; sign-in switched on."""
    path = tmp_path / "users.yaml"
    for username, role, practices in (
        ("ceo", "executive", ()),
        ("cfo", "finance", ()),
        ("lead", "practice_lead", (PRACTICE,)),
        ("dev", "delivery", ()),
    ):
        command = [
            sys.executable,
            "-m",
            "dashboards.users",
            "add",
            username,
            "--role",
            role,
            "--file",
            str(path),
        ]
        for practice in practices:
            command += ["--practice", practice]
        env = {**os.environ, "BILLABLE_DASHBOARD_NEW_PASSWORD": PASSWORDS[username]}
        result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
        assert result.returncode == 0, result.stderr
    monkeypatch.setenv("BILLABLE_DASHBOARD_USERS", str(path))
    monkeypatch.setenv("BILLABLE_DASHBOARD_COOKIE_KEY", COOKIE)
    return path


def signed_in_as(warehouse: Path, username: str, page: str = "overview", query: dict | None = None):
    def sign_in(at) -> None:
        at.text_input[0].input(username)
        at.text_input[1].input(PASSWORDS[username])
        at.button[0].click()

    def setup(at) -> None:
        if query:
            at.query_params.update(query)
        sign_in(at)

    at = run_page(warehouse, "overview", setup=setup)
    assert not at.exception, [element.value for element in at.exception]
    if page != "overview":
        at.switch_page(f"app_pages/{page}.py")
        at.run()
        assert not at.exception, [element.value for element in at.exception]
    return at


@pytest.fixture
def as_role() -> Iterator:
    def enter(access: Access):
        return db.as_role(access)

    yield enter


# --- sign-in fails closed ---------------------------------------------------------------------------


def test_an_empty_users_variable_refuses_access_and_only_an_unset_one_is_the_demo(warehouse, monkeypatch):
    monkeypatch.setenv("BILLABLE_DASHBOARD_USERS", "")
    at = run_page(warehouse)
    assert not at.exception
    assert "set but empty" in messages(at) and "access refused" in messages(at).lower()
    assert not at.metric and not at.dataframe

    monkeypatch.delenv("BILLABLE_DASHBOARD_USERS")
    at = run_page(warehouse)
    assert "Gross margin" in metrics(at) and "DSO" in metrics(at)  # the demo: everything


@pytest.mark.parametrize(
    "content, expected",
    [
        (None, "does not exist"),
        ("", "lists no users"),
        ("credentials:\n  usernames: {}\n", "lists no users"),
        ("credentials: [unclosed\n", "cannot be read"),
    ],
)
def test_a_missing_empty_or_invalid_users_file_refuses_access(
    warehouse, tmp_path, monkeypatch, content, expected
):
    path = tmp_path / "users.yaml"
    if content is not None:
        path.write_text(content)
    monkeypatch.setenv("BILLABLE_DASHBOARD_USERS", str(path))
    monkeypatch.setenv("BILLABLE_DASHBOARD_COOKIE_KEY", COOKIE)
    at = run_page(warehouse)
    assert not at.exception
    assert expected in messages(at)
    assert not at.metric and not at.text_input  # no figures, and no sign-in form to get past


def test_a_user_without_a_valid_role_is_refused_after_signing_in(warehouse, users):
    config = yaml.safe_load(users.read_text())
    del config["credentials"]["usernames"]["cfo"]["role"]
    config["credentials"]["usernames"]["dev"]["role"] = "superuser"
    users.write_text(yaml.safe_dump(config))
    for username, reason in (("cfo", "has no role"), ("dev", "unknown role")):
        at = signed_in_as(warehouse, username)
        assert reason in messages(at) and not at.metric


def test_the_users_cli_refuses_a_practice_lead_without_a_practice(tmp_path):
    path = tmp_path / "users.yaml"
    env = {**os.environ, "BILLABLE_DASHBOARD_NEW_PASSWORD": "long enough password"}
    command = [
        sys.executable,
        "-m",
        "dashboards.users",
        "add",
        "x",
        "--role",
        "practice_lead",
        "--file",
        str(path),
    ]
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 2 and "needs at least one practice" in result.stderr and not path.exists()
    with pytest.raises(AccessConfigError):
        add_user(path, "y", "Y", "", "long enough password", role="finance", practices=("Strategy",))
    with pytest.raises(AccessConfigError):  # a name that could not be a practice never reaches SQL
        Access(Role.PRACTICE_LEAD, ("x'); drop table marts.dim_projects; --",))


# --- the rules, relation by relation -----------------------------------------------------------------


def test_every_relation_has_a_row_rule():
    """A relation added to the dashboard without a rule would be refused to scoped roles: say so here."""
    assert set(ROW_RULES) == set(db.RELATIONS)


def test_a_practice_lead_reads_only_their_practice_from_every_relation(warehouse, as_role):
    projects = set(
        sql(warehouse, "select project_id from marts.dim_projects where practice = ?", PRACTICE)["project_id"]
    )
    people = set(
        sql(warehouse, "select employee_id from marts.dim_employees where practice = ?", PRACTICE)[
            "employee_id"
        ]
    )
    clients = set(
        sql(warehouse, "select client_id from marts.dim_projects where practice = ?", PRACTICE)["client_id"]
    )
    checked = 0
    with db.run_scope(), as_role(LEAD):
        for name, rule in ROW_RULES.items():
            t = db.tables(name)
            if rule is None or name in OPERATIONS:
                with pytest.raises(NotPermitted):
                    getattr(t, name)
                continue
            if not db.available(name):
                continue
            rows = db.read(f"select * from {getattr(t, name)}", tables=t)
            everything = sql(warehouse, f"select count(*) as n from {db.RELATIONS[name]}")["n"].iloc[0]
            if rule == "":
                assert len(rows) == everything, name  # reference data: whole
                continue
            assert len(rows) < everything or everything == 0, f"{name} was not limited"
            if "practice in" in rule and "practice" in rows:
                assert set(rows["practice"].dropna()) <= {PRACTICE}, name
            elif "client_id in" in rule:
                assert set(rows["client_id"]) <= clients, name
            else:
                with_project = rows[rows["project_id"].notna()]
                assert set(with_project["project_id"]) <= projects, name
                if "employee_id" in rows:
                    assert set(rows[rows["project_id"].isna()]["employee_id"]) <= people, name
            checked += 1
            for column in rows.columns:  # no per-person or per-entry cost (cost rates) for a lead
                if COST_COLUMN.search(column) and name != "rpt_revenue":
                    assert rows[column].isna().all(), f"{name}.{column}"
    assert checked >= 15


def test_a_practice_lead_figure_matches_sql_on_its_practice(warehouse, as_role):
    with db.run_scope(), as_role(LEAD):
        scoped = revenue_q.revenue_total(ALL_TIME).iloc[0]
        wip_as_of = wip_q.nearest_wip_date(date(2099, 1, 1))
        wip = wip_q.wip_by(ALL_TIME, wip_as_of)
        queue = exceptions_q.exception_queue(ALL_TIME)
    expected = sql(
        warehouse,
        "select sum(recognized_amount_reporting) as r from marts.rpt_revenue where practice = ?",
        PRACTICE,
    )["r"].iloc[0]
    assert scoped["recognized_revenue_reporting"] == pytest.approx(expected)
    assert set(wip["practice"]) == {PRACTICE}
    expected_wip = sql(
        warehouse,
        "select sum(wip_amount_reporting) as w from marts.rpt_wip where as_of_date = ? and practice = ?",
        wip_as_of,
        PRACTICE,
    )["w"].iloc[0]
    assert wip["wip_amount_reporting"].sum() == pytest.approx(expected_wip)
    assert set(queue["practice"].dropna()) <= {PRACTICE}
    assert len(queue) < len(sql(warehouse, "select * from marts.rpt_exception_aging where is_open"))


def test_delivery_gets_no_cost_or_margin_from_any_relation_or_query(warehouse, as_role):
    with db.run_scope(), as_role(DELIVERY):
        for name in ROW_RULES:
            t = db.tables(name)
            if name in OPERATIONS:
                with pytest.raises(NotPermitted):
                    getattr(t, name)
                continue
            if not db.available(name):
                continue
            rows = db.read(f"select * from {getattr(t, name)}", tables=t)
            assert not [column for column in rows.columns if COST_COLUMN.search(column)], name
        frames = [
            revenue_q.revenue_total(ALL_TIME),
            revenue_q.revenue_rows(ALL_TIME),
            *[revenue_q.revenue_by(ALL_TIME, group) for group in revenue_q.REVENUE_GROUPS],
            overview_q.revenue_monthly(ALL_TIME, ALL_TIME.start, ALL_TIME.end),
        ]
    for frame in frames:
        assert not frame.empty
        assert not [column for column in frame.columns if COST_COLUMN.search(column)]
    assert frames[0]["recognized_revenue_reporting"].iloc[0] > 0  # revenue itself stays


# --- a person's cost rate cannot be derived -------------------------------------------------------


def cost_cells(warehouse: Path) -> pd.DataFrame:
    """Ground truth per contract-month with time cost: distinct people, hours, time cost, and the
    hourly cost of the one person when there is only one."""
    return sql(
        warehouse,
        """
        select contract_id, cast(date_trunc('month', spent_date) as date) as month_start_date,
            count(distinct employee_id) as people, sum(hours) as hours,
            sum(cost_amount_reporting) as time_cost,
            min(cost_amount_reporting / nullif(hours, 0)) as lowest_rate,
            max(cost_amount_reporting / nullif(hours, 0)) as highest_rate
        from marts.fct_time_entries
        where cost_amount is not null
        group by 1, 2
        """,
    )


def derived_rates(warehouse: Path, access: Access) -> list[tuple[str, float]]:
    """The attack: everything the role can see of cost (every revenue query, the trace and CSV rows,
    each group, each client filter), divided by the hours of contract-months where one person worked
    (an attacker who knows who worked where). Returns the rates recovered."""
    truth = cost_cells(warehouse)
    single = truth[truth["people"] == 1]
    seen: list[tuple[str, float]] = []
    with db.run_scope(), db.as_role(access):
        rows = revenue_q.revenue_rows(ALL_TIME)  # the trace's and the CSV export's rows
        totals = revenue_q.revenue_total(ALL_TIME).iloc[0]
        clients = rows["client_name"].dropna().unique()
        by_client = revenue_q.revenue_by(ALL_TIME, "client") if "cost_reporting" in totals else None
        client_ids = sql(warehouse, "select client_id, client_name from marts.dim_clients")
    if "cost_amount_reporting" not in rows:
        return seen
    rows["month_start_date"] = pd.to_datetime(rows["month_start_date"]).dt.date
    single = single.assign(month_start_date=pd.to_datetime(single["month_start_date"]).dt.date)
    joined = rows.merge(single, on=["contract_id", "month_start_date"])
    for row in joined.itertuples():
        cost = row.cost_amount_reporting
        if pd.isna(cost) or not row.hours:
            continue
        rate = cost / row.hours  # the person's cost rate, within the day-to-day FX of the reporting currency
        if row.lowest_rate * 0.98 <= rate <= row.highest_rate * 1.02:
            seen.append((f"{row.contract_number} {row.month_start_date}", rate))
    # differencing: any cost in an aggregate beyond the rows shown would be a withheld cell's
    shown = rows["cost_amount_reporting"].fillna(0).sum()
    hidden = float(totals["cost_reporting"] or 0) - shown
    if abs(hidden) > 0.01:
        seen.append(("total minus the rows shown", hidden))
    if by_client is not None:
        for client in clients:
            in_rows = rows[rows["client_name"] == client]["cost_amount_reporting"].fillna(0).sum()
            group = by_client[by_client["group_value"] == client]["cost_reporting"].fillna(0).sum()
            if abs(group - in_rows) > 0.01:
                seen.append((f"{client} minus its rows", group - in_rows))
        with db.run_scope(), db.as_role(access):
            for client_id in client_ids["client_id"].head(12):
                one = Filters(start=ALL_TIME.start, end=ALL_TIME.end, clients=(client_id,))
                total = revenue_q.revenue_total(one).iloc[0]["cost_reporting"]
                listed = revenue_q.revenue_rows(one)["cost_amount_reporting"].fillna(0).sum()
                if pd.notna(total) and abs(total - listed) > 0.01:
                    seen.append((f"client {client_id} total minus its rows", total - listed))
    return seen


def test_the_cost_rate_attack_works_on_full_access_so_the_test_can_fail(warehouse):
    truth = cost_cells(warehouse)
    assert (truth["people"] == 1).sum() >= 5  # the hole: many one-person contract-months
    assert len(derived_rates(warehouse, Access(Role.FINANCE))) == (truth["people"] == 1).sum()


EVERY_PRACTICE = ("Strategy", "Technology", "Finance Advisory", "People & Change")


@pytest.mark.parametrize("access", [LEAD, Access(Role.PRACTICE_LEAD, EVERY_PRACTICE), DELIVERY])
def test_a_role_without_cost_rates_cannot_derive_a_persons_cost_rate(warehouse, access):
    assert derived_rates(warehouse, access) == []


def test_a_lead_still_sees_cost_where_enough_people_share_it(warehouse):
    truth = cost_cells(warehouse)
    with (
        db.run_scope(),
        db.as_role(
            Access(Role.PRACTICE_LEAD, ("Strategy", "Technology", "Finance Advisory", "People & Change"))
        ),
    ):
        rows = revenue_q.revenue_rows(ALL_TIME)
    rows["month_start_date"] = pd.to_datetime(rows["month_start_date"]).dt.date
    truth["month_start_date"] = pd.to_datetime(truth["month_start_date"]).dt.date
    joined = rows.merge(truth, on=["contract_id", "month_start_date"], how="left")
    visible = joined[joined["cost_amount_reporting"].notna()]
    assert not visible.empty and (visible["people"] >= 3).all()
    withheld = joined[(joined["people"].fillna(0) < 3)]
    assert withheld["cost_amount_reporting"].isna().all() and withheld["gross_margin_pct"].isna().all()


# --- the pages as each role ---------------------------------------------------------------------------


def page_titles(at) -> list[str]:
    return [element.value for element in at.title]


def test_each_role_sees_its_pages_and_sections(warehouse, users):
    ceo = signed_in_as(warehouse, "ceo")
    assert {"Gross margin", "DSO"} <= set(metrics(ceo))
    lead = signed_in_as(warehouse, "lead")
    assert "DSO" not in metrics(lead) and "Gross margin" not in metrics(lead)
    assert "practice lead (Strategy)" in messages(lead)
    dev = signed_in_as(warehouse, "dev", "revenue_margin")
    assert "Gross margin" not in metrics(dev) and "Gross margin %" not in metrics(dev)
    assert "Recognised revenue" in metrics(dev)
    for frame in [element.value for element in dev.dataframe]:
        assert not [column for column in frame.columns if COST_COLUMN.search(str(column))]
    # a page the role may not see is not registered at all, so nothing can open it
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        lead.switch_page("app_pages/pipeline_health.py")
    cfo = signed_in_as(warehouse, "cfo", "pipeline_health")
    assert page_titles(cfo) == ["Pipeline health"]


@pytest.mark.parametrize(
    "page", ["utilisation", "wip_billing", "revenue_margin", "exceptions", "reconciliation"]
)
def test_a_practice_leads_tables_hold_only_their_practice(warehouse, users, page):
    at = signed_in_as(warehouse, "lead", page)
    assert "not shown for your role" not in messages(at).lower() or page == "revenue_margin"
    projects = set(
        sql(warehouse, "select project_code from marts.dim_projects where practice = ?", PRACTICE)[
            "project_code"
        ]
    )
    for frame in [element.value for element in at.dataframe]:
        if "practice" in frame:
            assert set(frame["practice"].dropna()) <= {PRACTICE}, page
        if "project_code" in frame:
            assert set(frame["project_code"].dropna()) <= projects, page


def test_every_trace_of_a_practice_lead_holds_only_their_practice(warehouse, users):
    at = signed_in_as(warehouse, "lead")
    choices = at.selectbox(key="overview_trace").options
    assert choices and not [choice for choice in choices if choice.startswith("DSO")]
    for choice in choices:
        at.selectbox(key="overview_trace").select(choice).run()
        assert not at.exception
        frame = at.dataframe[0].value
        assert not frame.empty, choice
        if "practice" in frame:
            assert set(frame["practice"].dropna()) == {PRACTICE}, choice


def test_url_parameters_set_the_filters_and_never_widen_a_scope(warehouse, users):
    ceo = signed_in_as(warehouse, "ceo", query={"practice": "Technology", "period": "3-months"})
    assert ceo.multiselect(key="filter_practice").value == ["Technology"]
    assert ceo.query_params.get("practice") in ("Technology", ["Technology"])
    lead = signed_in_as(warehouse, "lead", query={"practice": "Technology"})
    assert "Ignored from the link: practice=Technology" in messages(lead)
    assert lead.multiselect(key="filter_practice").value == []
    assert "practice: Strategy" in messages(lead)


def test_make_check_names_a_sign_in_that_would_refuse_everyone(users, monkeypatch):
    from billable.check import CheckFailed, check_dashboard

    assert check_dashboard().startswith("sign-in on")
    config = yaml.safe_load(users.read_text())
    del config["credentials"]["usernames"]["lead"]["practices"]
    users.write_text(yaml.safe_dump(config))
    with pytest.raises(CheckFailed, match="needs at least one practice"):
        check_dashboard()
    monkeypatch.setenv("BILLABLE_DASHBOARD_USERS", "")
    with pytest.raises(CheckFailed, match="set but empty"):
        check_dashboard()
    monkeypatch.delenv("BILLABLE_DASHBOARD_USERS")
    assert check_dashboard().startswith("sign-in off")
