"""Who may see what: the roles, and the row- and column-level rules every read goes through.

Enforcement is central and fails closed (docs/dashboards.md, "Sign-in and roles"): a query names
its relations through `tables(...)` (dashboards/queries/connection.py), and for a signed-in user
whose role restricts what they see, each name becomes a subquery over the relation that keeps only
the rows and columns the role may see. No page or query module can forget the scope, and a
relation without a rule here is refused (NotPermitted), never read unscoped.

- Rows (practice leads, and delivery users given practices): relations with a practice column
  keep their practice's rows (people facts by the person's practice, project facts by the
  project's); relations without one are scoped through a documented mapping (clients, invoices,
  exceptions and reconciliation through their projects' practice; exceptions with no project
  through the person's practice); relations with no sound mapping (receivables by legal entity,
  the operations tables) are refused, so their sections say "not shown for your role".
- Columns: a role without access to cost (delivery) gets every cost and margin column as null,
  and `read` drops those columns from what it returns. A role without access to cost rates
  (practice lead) gets per-person and per-entry cost as null everywhere, and contract-month cost
  and margin in rpt_revenue only where at least `cost_min_people` distinct people carry cost in
  that contract-month: with one person, cost / hours is that person's rate.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    EXECUTIVE = "executive"
    FINANCE = "finance"
    PRACTICE_LEAD = "practice_lead"
    DELIVERY = "delivery"


ALL_PAGES = (
    "overview",
    "utilisation",
    "wip_billing",
    "revenue_margin",
    "forecast",
    "project_health",
    "exceptions",
    "reconciliation",
    "pipeline_health",
)
# Pipeline health shows the operations tables (quarantined raw records hold cost rates): firm-wide
# roles with access to cost only.
_BUSINESS_PAGES = tuple(page for page in ALL_PAGES if page != "pipeline_health")
ROLE_PAGES: dict[Role, tuple[str, ...]] = {
    Role.EXECUTIVE: ALL_PAGES,
    Role.FINANCE: ALL_PAGES,
    Role.PRACTICE_LEAD: _BUSINESS_PAGES,
    Role.DELIVERY: _BUSINESS_PAGES,
}

# A practice name goes into SQL text as a quoted literal (a relation's scope is part of its name,
# so the cache keys differ per scope): only names of this shape are accepted from the users file.
PRACTICE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 &.,/()'-]{0,79}$")
# Columns that carry cost or something that reveals it (margin = revenue - cost).
COST_COLUMN = re.compile(r"cost|margin")


class NotPermitted(Exception):
    """The signed-in user's role may not read this relation (the section is not shown)."""


class AccessConfigError(ValueError):
    """A user's role or practices in the users file are missing or invalid (sign-in refused)."""


@dataclass(frozen=True)
class Access:
    """What one visitor may see: their role, the practices their rows are limited to (none: the
    whole firm), and the fewest people a cost figure must sum over for a role without cost rates."""

    role: Role
    practices: tuple[str, ...] = ()
    cost_min_people: int = 3
    username: str | None = None

    def __post_init__(self) -> None:
        if self.role == Role.PRACTICE_LEAD and not self.practices:
            raise AccessConfigError("a practice_lead needs at least one practice")
        if self.practices and self.role not in (Role.PRACTICE_LEAD, Role.DELIVERY):
            raise AccessConfigError(f"role {self.role} sees the whole firm: give no practices")
        bad = [name for name in self.practices if not PRACTICE_NAME.match(name)]
        if bad:
            raise AccessConfigError(f"practice name(s) {bad} have characters a practice name cannot have")
        if self.cost_min_people < 2:
            raise AccessConfigError(f"cost_min_people must be >= 2, got {self.cost_min_people}")

    @property
    def pages(self) -> tuple[str, ...]:
        return ROLE_PAGES[self.role]

    @property
    def sees_cost(self) -> bool:
        return self.role != Role.DELIVERY

    @property
    def sees_cost_rates(self) -> bool:
        return self.role in (Role.EXECUTIVE, Role.FINANCE)

    @property
    def unrestricted(self) -> bool:
        return not self.practices and self.sees_cost_rates

    def describe(self) -> str:
        scope = f" ({', '.join(self.practices)})" if self.practices else ""
        return f"{self.role.value.replace('_', ' ')}{scope}"


FULL_ACCESS = Access(Role.EXECUTIVE)


def parse_access(username: str, record: dict, cost_min_people: int) -> Access:
    """The Access of one user's record in the users file; AccessConfigError naming what is wrong."""
    raw_role = record.get("role")
    if not raw_role:
        raise AccessConfigError(
            f"user {username!r} has no role in the users file; set one with "
            f"`python -m dashboards.users add {username} --role <{'|'.join(role.value for role in Role)}>`"
        )
    try:
        role = Role(str(raw_role))
    except ValueError:
        raise AccessConfigError(
            f"user {username!r} has an unknown role {raw_role!r}; roles: {[role.value for role in Role]}"
        ) from None
    practices = record.get("practices") or []
    if isinstance(practices, str) or not isinstance(practices, list):
        raise AccessConfigError(f"user {username!r}: practices must be a list of names, got {practices!r}")
    try:
        return Access(role, tuple(str(name) for name in practices), cost_min_people, username)
    except AccessConfigError as error:
        raise AccessConfigError(f"user {username!r}: {error}") from None


# --- the rules per relation -----------------------------------------------------------------------

# How each relation is limited to a set of practices. "{p}" is the quoted practice list; {projects},
# {clients} and {people} are subqueries of the ids in those practices. None: no sound mapping, the
# relation is refused to a scoped user. "": reference data that holds no rows of any practice.
_IN_PRACTICE = "practice in ({p})"
_ON_PROJECT = "project_id in ({projects})"
_ON_PROJECT_OR_PERSON = "(project_id in ({projects}) or (project_id is null and employee_id in ({people})))"
ROW_RULES: dict[str, str | None] = {
    "as_of": "",
    "fx_rates": "",
    "dim_legal_entities": "",
    "semantic_manifest": "",
    "transform_runs": "",  # build status (the freshness line on every page)
    "load_log": "",  # load status per source system (the freshness line)
    "dim_clients": "client_id in ({clients})",
    "dim_projects": _IN_PRACTICE,
    "dim_employees": _IN_PRACTICE,
    "fct_time_entries": _ON_PROJECT,
    "fct_capacity_daily": _IN_PRACTICE,
    "fct_invoices": _ON_PROJECT,
    "fct_invoice_lines": _ON_PROJECT,
    "fct_exceptions": _ON_PROJECT_OR_PERSON,
    "rpt_exception_aging": _ON_PROJECT_OR_PERSON,
    "exception_history": _ON_PROJECT_OR_PERSON,
    "fct_utilization_daily": _IN_PRACTICE,
    "rpt_utilization": _IN_PRACTICE,
    "rpt_wip": _IN_PRACTICE,
    "rpt_time_to_invoice": _IN_PRACTICE,  # the project's practice
    "rpt_time_to_invoice_monthly": _IN_PRACTICE,
    "rpt_realization": _IN_PRACTICE,
    "rpt_revenue": _IN_PRACTICE,  # the contract's practice
    "rpt_ar_aging": None,  # receivables by legal entity: no practice
    "rpt_dso": None,
    "rpt_reconciliation": _ON_PROJECT,
    "forecast_horizon": "",  # the forecast window's dates
    "rpt_forecast_utilization_weekly": _IN_PRACTICE,  # the person's practice
    "rpt_demand_capacity_weekly": _IN_PRACTICE,
    "rpt_revenue_forecast_monthly": _IN_PRACTICE,
    "rpt_forecast_accuracy": None,  # firm-wide only (its snapshots are not read by practice)
    "rpt_project_health": _IN_PRACTICE,  # the project's practice; its cost columns are withheld
    "fct_reconciliation_items": _ON_PROJECT,
    "sync_runs": None,
    "line_states": None,
    "pipeline_runs": None,
    "quarantine": None,
}
# The operations tables: only roles that see Pipeline health read them.
OPERATIONS = frozenset({"sync_runs", "line_states", "pipeline_runs", "quarantine"})


def _quoted(names: Sequence[str]) -> str:
    return ", ".join("'" + name.replace("'", "''") + "'" for name in names)


def scoped_relation(
    access: Access,
    name: str,
    relations: dict[str, str],
    columns: Callable[[str], Sequence[str]],
) -> str:
    """The SQL to put where a query names relation `name`: the relation itself for full access,
    else a subquery with the role's rows and columns. NotPermitted when the role may not read it."""
    relation = relations[name]
    if name in OPERATIONS and "pipeline_health" not in access.pages:
        raise NotPermitted(f"{relation} is not shown to the {access.describe()} role")
    if access.unrestricted:
        return relation
    rule = ROW_RULES.get(name)  # a relation without a rule is refused, never read unscoped
    if access.practices and rule is None:
        raise NotPermitted(f"{relation} has no practice to limit it by, so it is not shown to a scoped role")
    condition = "true"
    if access.practices and rule:
        practices = _quoted(access.practices)
        projects = f"select project_id from {relations['dim_projects']} where practice in ({practices})"
        condition = rule.format(
            p=practices,
            projects=projects,
            clients=f"select client_id from {relations['dim_projects']} where practice in ({practices})",
            people=f"select employee_id from {relations['dim_employees']} where practice in ({practices})",
        )
    names = list(columns(relation))
    if not names:
        raise NotPermitted(f"the columns of {relation} could not be read to apply the role's rules")
    k_rule = name == "rpt_revenue" and access.sees_cost
    if condition == "true" and not any(COST_COLUMN.search(column) for column in names):
        return relation  # nothing to limit: the relation itself (and the reads' cache shared)
    selected = []
    for column in names:
        if not COST_COLUMN.search(column):
            selected.append(f'scoped."{column}"')
        elif k_rule:
            selected.append(
                f'case when cost_people.people >= {int(access.cost_min_people)} then scoped."{column}" end'
                f' as "{column}"'
            )
        else:
            selected.append(f'cast(null as double precision) as "{column}"')
    people_join = ""
    if k_rule:
        # distinct people whose time carries cost, per contract and month (rpt_revenue's time cost)
        people_join = (
            " left join (select contract_id,"
            " cast(date_trunc('month', spent_date) as date) as month_start_date,"
            f" count(distinct employee_id) as people from {relations['fct_time_entries']}"
            " where cost_amount is not null group by contract_id,"
            " cast(date_trunc('month', spent_date) as date)) as cost_people"
            " on cost_people.contract_id = scoped.contract_id"
            " and cost_people.month_start_date = scoped.month_start_date"
        )
    return f"(select {', '.join(selected)} from {relation} as scoped{people_join} where {condition})"


def visible_columns(access: Access, names: Sequence[str]) -> list[str]:
    """The result columns a role may receive: without access to cost, none that names cost or margin."""
    return [name for name in names if access.sees_cost or not COST_COLUMN.search(str(name))]
