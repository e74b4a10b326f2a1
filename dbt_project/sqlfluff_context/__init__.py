"""What the models' Jinja needs beyond sqlfluff's dbt builtins, for sqlfluff's `jinja` templater.

Loaded by dbt_project/.sqlfluff (`library_path`): every public name here is a Jinja global when
sqlfluff renders a model. sqlfluff lints the *rendered* SQL, so these stand-ins render what
dbt-duckdb renders, close enough to parse the same way (the text inside a macro is never rewritten:
only the model's own SQL is). Nothing here runs in dbt itself.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import yaml
from jinja2 import pass_context
from jinja2.runtime import Context, Undefined

_PROJECT = yaml.safe_load((Path(__file__).resolve().parent.parent / "dbt_project.yml").read_text())
_VARS: dict[str, Any] = _PROJECT.get("vars") or {}


def var(name: str, default: Any = "") -> Any:
    """The project's own value (dbt_project.yml vars), else the default, as dbt gives it."""
    return _VARS.get(name, default)


def env_var(name: str, default: str = "") -> str:
    return default or name


execute = True
invocation_id = "00000000-0000-0000-0000-000000000000"


class _Target:
    type = "duckdb"
    name = "dev"
    schema = "main"
    database = "warehouse"
    threads = 1


target = _Target()


class _Exceptions:
    def raise_compiler_error(self, message: str) -> str:
        return ""

    def warn(self, message: str) -> str:
        return ""


exceptions = _Exceptions()


class _Column:
    def __init__(self, name: str) -> None:
        self.name = name


class _Adapter:
    """The adapter calls the models make: relations exist, with only an `id` column (so code that
    adds the columns an older table lacks renders its additions too)."""

    def quote(self, name: str) -> str:
        return f'"{name}"'

    def get_relation(self, database: Any, schema: Any, identifier: Any) -> Any:
        return identifier

    def get_columns_in_relation(self, relation: Any) -> list[_Column]:
        return [_Column("id")]

    @pass_context
    def dispatch(self, context: Context, name: str, macro_namespace: str | None = None) -> Any:
        """The duckdb__ implementation (else default__) among the loaded macros, as dbt picks it."""
        for candidate in (f"duckdb__{name}", f"default__{name}"):
            macro = context.resolve(candidate)
            if not isinstance(macro, Undefined):
                return macro
        return lambda *args, **kwargs: "null"


adapter = _Adapter()


class _Dbt:
    """dbt-core's cross-database macros (`dbt.*`), rendered as dbt-duckdb renders them."""

    def type_string(self) -> str:
        return "varchar"

    def escape_single_quotes(self, expression: str) -> str:
        return expression.replace("'", "''")

    def type_timestamp(self) -> str:
        return "timestamp"

    def type_float(self) -> str:
        return "double"

    def type_int(self) -> str:
        return "integer"

    def type_numeric(self) -> str:
        return "numeric(28, 6)"

    def type_bigint(self) -> str:
        return "bigint"

    def type_boolean(self) -> str:
        return "boolean"

    def current_timestamp(self) -> str:
        return "now()"

    def cast(self, field: str, type: str) -> str:
        return f"cast({field} as {type})"

    def safe_cast(self, field: str, type: str) -> str:
        return f"try_cast({field} as {type})"

    def hash(self, field: str) -> str:
        return f"md5(cast({field} as varchar))"

    def concat(self, fields: list[str]) -> str:
        return " || ".join(fields)

    def split_part(self, string_text: str, delimiter_text: str, part_number: int) -> str:
        return f"split_part({string_text}, {delimiter_text}, {part_number})"

    def date_trunc(self, datepart: str, date: str) -> str:
        return f"date_trunc('{datepart}', {date})"

    def datediff(self, first_date: str, second_date: str, datepart: str) -> str:
        return f"date_diff('{datepart}', {first_date}, {second_date})"

    def dateadd(self, datepart: str, interval: Any, from_date_or_timestamp: str) -> str:
        return f"date_add({from_date_or_timestamp}, interval ({interval}) {datepart})"

    def last_day(self, date: str, datepart: str) -> str:
        return f"cast(date_trunc('{datepart}', {date}) + interval 1 {datepart} - interval 1 day as date)"

    def listagg(
        self,
        measure: str,
        delimiter_text: str = "','",
        order_by_clause: str | None = None,
        limit_num: int | None = None,
    ) -> str:
        order_by = f" {order_by_clause}" if order_by_clause else ""
        return f"string_agg({measure}, {delimiter_text}{order_by})"

    def date_spine(self, datepart: str, start_date: str, end_date: str) -> str:
        return f"select range as date_{datepart} from range({start_date}, {end_date}, interval 1 {datepart})"


dbt = _Dbt()


class _Model:
    """The model being rendered (dbt's `model`): what macros/follow_change.sql reads of it."""

    raw_code = ""


model = _Model()


def local_md5(value: str) -> str:
    return hashlib.md5(value.encode()).hexdigest()
