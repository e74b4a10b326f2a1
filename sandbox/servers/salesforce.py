"""Salesforce REST v60.0: `GET /query?q=SOQL`, `nextRecordsUrl` batches, `sobjects/<Obj>/describe`.

The SOQL subset: `SELECT f1, f2 | COUNT() FROM Obj [WHERE <condition> [AND ...]]
[ORDER BY f [ASC|DESC]] [LIMIT n]`, a condition being `<datetime field> <op> <literal>` or
`Id IN ('<id>', ...)`. Query locators are stateless: the query itself, compressed.
"""

from __future__ import annotations

import base64
import re
import zlib
from dataclasses import dataclass
from datetime import datetime

import orjson
import polars as pl

from sandbox.servers.encode import json_rows_joined, render_datetimes
from sandbox.servers.http_types import Context, Request, Response, System
from sandbox.servers.state import STAMP, Served
from sandbox.world import parse_ts

PREFIX = "/services/data/v60.0/"
OBJECTS = ("User", "Account", "Opportunity", "Contract")
STAMP_FIELDS = ("CreatedDate", "LastModifiedDate", "SystemModstamp")
BATCH = 2000
QUERY = re.compile(
    r"^\s*SELECT\s+(?P<fields>.+?)\s+FROM\s+(?P<object>\S+)"
    r"(?:\s+WHERE\s+(?P<where>.+?))?(?:\s+ORDER\s+BY\s+(?P<order>.+?))?(?:\s+LIMIT\s+(?P<limit>\S+))?\s*$",
    re.IGNORECASE | re.DOTALL,
)
CONDITION = re.compile(r"^\s*(?P<field>[\w.]+)\s*(?P<op>>=|<=|!=|>|<|=)\s*(?P<value>\S+)\s*$")
IN_CONDITION = re.compile(r"^\s*(?P<field>[\w.]+)\s+IN\s*\((?P<values>[^)]*)\)\s*$", re.IGNORECASE)
QUOTED = re.compile(r"\s*'([^'\\]*)'\s*")
OPS = {">": "gt", ">=": "ge", "<": "lt", "<=": "le", "=": "eq", "!=": "ne"}
# Each object's fields (docs/sandbox.md): what an object with no records (a missing entity file)
# still answers a query for, as Salesforce does; an object with records answers its columns.
DECLARED_FIELDS = {
    "User": ("Username", "Email", "FirstName", "LastName", "Name", "IsActive", "Title"),
    "Account": ("Name", "Type", "Industry", "BillingCountry", "CurrencyIsoCode", "OwnerId", "IsDeleted"),
    "Opportunity": (
        *("Name", "AccountId", "StageName", "CloseDate", "Amount", "CurrencyIsoCode", "IsClosed"),
        *("IsWon", "Type", "Probability", "OwnerId", "Practice__c", "BillingMethod__c"),
    ),
    "Contract": (
        *("ContractNumber", "AccountId", "StartDate", "EndDate", "Status", "CurrencyIsoCode"),
        *("OpportunityId__c", "ContractValue__c", "BillingMethod__c", "LegalEntity__c", "MonthlyFee__c"),
    ),
}


class SoqlError(Exception):
    def __init__(self, code: str, message: str, status: int = 400):
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


def shape_for(obj: str):
    def shape(frame: pl.DataFrame) -> pl.DataFrame:
        """Salesforce records: attributes, Id, fields, and the audit stamps in Salesforce's format."""
        stamp = "%Y-%m-%dT%H:%M:%S.000+0000"
        frame = render_datetimes(frame).with_columns(
            pl.struct(
                pl.lit(obj).alias("type"),
                pl.concat_str(pl.lit(f"/services/data/v60.0/sobjects/{obj}/"), pl.col("Id")).alias("url"),
            ).alias("attributes"),
            pl.col("_created_at").dt.strftime(stamp).alias("CreatedDate"),
            pl.col("_updated_at").dt.strftime(stamp).alias("LastModifiedDate"),
            pl.col("_updated_at").dt.strftime(stamp).alias("SystemModstamp"),
        )
        fields = [
            c for c in frame.columns if not c.startswith("_") and c not in ("attributes", "Id", *STAMP_FIELDS)
        ]
        meta = [c for c in frame.columns if c.startswith("_")]
        return frame.select(["attributes", "Id", *fields, *STAMP_FIELDS, *meta])

    return shape


def fail(status: int, code: str, message: str) -> Response:
    return Response.json(status, [{"message": message, "errorCode": code}])


def server_error(status: int, context: Context) -> Response:
    if status == 503:
        return fail(503, "SERVER_UNAVAILABLE", "Server temporarily unavailable, please retry your request.")
    return fail(
        status,
        "UNKNOWN_EXCEPTION",
        "An unexpected error occurred. Please include this ErrorId if you "
        "contact support: 1950286321-41302 (-1371307318)",
    )


def throttled(retry_after: int, context: Context) -> Response:
    return fail(429, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")


def bucket(request: Request) -> str:
    return request.bearer() or "-"


# (field, operator, a datetime literal), or ("Id", "in", the listed ids)
Condition = tuple[str, str, datetime | list[str]]


@dataclass
class Query:
    text: str
    obj: str
    fields: list[str] | None  # None for COUNT()
    conditions: list[Condition]
    order: tuple[str, bool] | None  # (field, descending)
    limit: int | None


def _resolve(name: str, columns: list[str], obj: str) -> str:
    """A field name as the object spells it (SOQL is case-insensitive), else INVALID_FIELD."""
    by_lower = {column.lower(): column for column in columns if not column.startswith("_")}
    found = by_lower.get(name.strip().lower())
    if found is None or found == "attributes":
        raise SoqlError(
            "INVALID_FIELD",
            f"No such column '{name.strip()}' on entity '{obj}'. If you are attempting "
            "to use a custom field, be sure to append the '__c' after the custom field name. Please "
            "reference your WSDL or the describe call for the appropriate names.",
        )
    return found


def parse(text: str, context: Context) -> tuple[Query, Served]:
    """Parse and check a SOQL query against the served object."""
    match = QUERY.match(text or "")
    if not match:
        raise SoqlError(
            "MALFORMED_QUERY", f"unexpected token: the query must be SELECT fields FROM object, got {text!r}"
        )
    obj_name = match["object"]
    obj = next((o for o in OBJECTS if o.lower() == obj_name.lower()), None)
    if obj is None:
        raise SoqlError(
            "INVALID_TYPE",
            f"sObject type '{obj_name}' is not supported. If you are attempting to use "
            "a custom object, be sure to append the '__c' after the entity name. Please reference "
            "your WSDL or the describe call for the appropriate names.",
        )
    served = context.state.served("crm", obj, shape_for(obj))
    columns = served.frame.columns if served.height else ["Id", *DECLARED_FIELDS[obj], *STAMP_FIELDS]
    raw_fields = match["fields"].strip()
    fields: list[str] | None
    if re.fullmatch(r"count\(\s*\)", raw_fields, re.IGNORECASE):
        fields = None
    else:
        fields = []
        for name in raw_fields.split(","):
            if not name.strip() or not re.fullmatch(r"[\w.]+", name.strip()):
                raise SoqlError("MALFORMED_QUERY", f"unexpected token: {name.strip()!r} in the field list")
            resolved = _resolve(name, columns, obj)
            if resolved not in fields:
                fields.append(resolved)
    conditions: list[Condition] = []
    if match["where"]:
        for clause in re.split(r"\s+AND\s+", match["where"], flags=re.IGNORECASE):
            listed = IN_CONDITION.match(clause)
            if listed:
                conditions.append(id_list(listed, columns, obj))
                continue
            cond = CONDITION.match(clause)
            if not cond:
                raise SoqlError(
                    "MALFORMED_QUERY",
                    f"unexpected token in WHERE: {clause.strip()!r} (this sandbox "
                    "supports <datetime field> <op> <literal> and Id IN ('...', ...) joined by AND)",
                )
            field = _resolve(cond["field"], columns, obj)
            if field not in STAMP_FIELDS:
                raise SoqlError(
                    "MALFORMED_QUERY",
                    f"filtering on {field} is not supported by this sandbox; filter "
                    f"on one of {', '.join(STAMP_FIELDS)}",
                )
            value = cond["value"]
            if value[:1] in "'\"":
                raise SoqlError(
                    "INVALID_FIELD",
                    f"value of filter criterion for field '{field}' must be of type "
                    "dateTime and should not be enclosed in quotes",
                )
            try:
                moment = parse_ts(value)
            except ValueError:
                raise SoqlError(
                    "MALFORMED_QUERY",
                    f"line 1:{match.start('where')} no viable alternative at "
                    f"character '{value}': not a dateTime literal",
                ) from None
            conditions.append((field, OPS[cond["op"]], moment))
    order = None
    if match["order"]:
        order_match = re.fullmatch(
            r"\s*([\w.]+)(?:\s+(ASC|DESC))?(?:\s+NULLS\s+(?:FIRST|LAST))?\s*", match["order"], re.IGNORECASE
        )
        if not order_match:
            raise SoqlError("MALFORMED_QUERY", f"unexpected token in ORDER BY: {match['order']!r}")
        order = (_resolve(order_match[1], columns, obj), (order_match[2] or "").upper() == "DESC")
    limit = None
    if match["limit"]:
        if not match["limit"].isdigit():
            raise SoqlError(
                "MALFORMED_QUERY", f"unexpected token: LIMIT expects a number, got {match['limit']!r}"
            )
        limit = int(match["limit"])
    return Query(text, obj, fields, conditions, order, limit), served


def id_list(listed: re.Match, columns: list[str], obj: str) -> Condition:
    """`Id IN ('a', 'b')` as a condition; Salesforce takes only quoted ids there."""
    field = _resolve(listed["field"], columns, obj)
    if field != "Id":
        raise SoqlError("MALFORMED_QUERY", f"IN on {field} is not supported by this sandbox; use Id IN (...)")
    items = listed["values"].split(",")
    ids = [QUOTED.fullmatch(item) for item in items]
    if not items or not all(ids):
        shown = listed["values"].strip()
        raise SoqlError("MALFORMED_QUERY", f"unexpected token in IN list: {shown!r} (ids must be quoted)")
    return ("Id", "in", [found[1] for found in ids if found])


def run(query: Query, served: Served) -> pl.DataFrame:
    """The records a query matches, in its order."""
    frame = served.frame
    if served.height == 0:
        return frame
    for field, op, moment in query.conditions:
        if isinstance(moment, list):  # Id IN (...)
            frame = frame.filter(pl.col("Id").is_in(moment))
            continue
        if field in ("LastModifiedDate", "SystemModstamp") and op in ("gt", "ge"):
            frame = (
                frame.slice(served.first_after(moment, inclusive=op == "ge"))
                if frame is served.frame
                else (frame.filter(pl.col(STAMP) > moment if op == "gt" else pl.col(STAMP) >= moment))
            )
            continue
        column = pl.col(STAMP) if field != "CreatedDate" else pl.col("_created_at")
        expr = {
            "gt": column > moment,
            "ge": column >= moment,
            "lt": column < moment,
            "le": column <= moment,
            "eq": column == moment,
            "ne": column != moment,
        }[op]
        frame = frame.filter(expr)
    if query.order is not None:
        field, descending = query.order
        if field in ("LastModifiedDate", "SystemModstamp"):
            frame = frame.reverse() if descending else frame
        else:
            frame = frame.sort(field, descending=descending, nulls_last=True, maintain_order=True)
    if query.limit is not None:
        frame = frame.head(query.limit)
    return frame


def locator(text: str) -> str:
    return "01g" + base64.urlsafe_b64encode(zlib.compress(text.encode())).decode().rstrip("=")


def unlocator(value: str) -> tuple[str, int]:
    token, _, offset = value.rpartition("-")
    if not token.startswith("01g") or not offset.isdigit():
        raise ValueError(value)
    data = token[3:]
    return zlib.decompress(base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))).decode(), int(offset)


def _batch_size(request: Request) -> int:
    options = request.header("sforce-query-options") or ""
    found = re.search(r"batchSize\s*=\s*(\d+)", options)
    return min(max(int(found[1]), 200), BATCH) if found else BATCH


def answer(query: Query, served: Served, offset: int, request: Request) -> Response:
    frame = run(query, served)
    total = frame.height
    if query.fields is None:
        return Response.json(200, {"totalSize": total, "done": True, "records": []})
    size = _batch_size(request)
    page = frame.slice(offset, size).select(["attributes", *query.fields]) if total else frame
    done = offset + size >= total
    head: dict[str, object] = {"totalSize": total, "done": done}
    if not done:
        head["nextRecordsUrl"] = f"{PREFIX}query/{locator(query.text)}-{offset + size}"
    return Response(200, orjson.dumps(head)[:-1] + b',"records":[' + json_rows_joined(page).encode() + b"]}")


def describe(obj_name: str, context: Context) -> Response:
    obj = next((o for o in OBJECTS if o.lower() == obj_name.lower()), None)
    if obj is None:
        return fail(404, "NOT_FOUND", f"The requested resource does not exist: sObject type '{obj_name}'")
    served = context.state.served("crm", obj, shape_for(obj))
    schema = served.frame.schema if served.height else {"Id": pl.String}
    kinds: dict[object, str] = {
        pl.String: "string",
        pl.Boolean: "boolean",
        pl.Float64: "double",
        pl.Int64: "int",
    }
    fields: list[dict[str, object]] = [{"name": "Id", "type": "id"}]
    for name, dtype in schema.items():
        if name.startswith("_") or name in ("attributes", "Id"):
            continue
        kind = "datetime" if name in STAMP_FIELDS else kinds.get(dtype, "string")
        if name.endswith("Date") and name not in STAMP_FIELDS:
            kind = "date"
        if name.endswith("Id") or name.endswith("Id__c"):
            kind = "reference"
        fields.append({"name": name, "type": kind, "custom": name.endswith("__c")})
    return Response.json(
        200,
        {
            "name": obj,
            "label": obj,
            "queryable": True,
            "custom": False,
            "fields": fields,
            "urls": {"sobject": f"{PREFIX}sobjects/{obj}"},
        },
    )


def handle(request: Request, context: Context) -> Response:
    """Serve one Salesforce request."""
    if request.refused_token("salesforce", context):
        return fail(401, "INVALID_SESSION_ID", "Session expired or invalid")
    rest = request.path[len(PREFIX) :].strip("/")
    if request.method != "GET":
        return fail(405, "METHOD_NOT_ALLOWED", f"HTTP Method '{request.method}' not allowed. Allowed are GET")
    try:
        if rest == "query":
            text = request.param("q")
            if not text:
                return fail(400, "MALFORMED_QUERY", "A query string has to be specified")
            query, served = parse(text, context)
            return answer(query, served, 0, request)
        if rest.startswith("query/"):
            try:
                text, offset = unlocator(rest[len("query/") :])
            except Exception:
                return fail(400, "INVALID_QUERY_LOCATOR", f"invalid query locator: {rest[len('query/') :]}")
            query, served = parse(text, context)
            return answer(query, served, offset, request)
        describe_match = re.fullmatch(r"sobjects/(\w+)/describe", rest)
        if describe_match:
            return describe(describe_match[1], context)
    except SoqlError as err:
        return fail(err.status, err.code, err.message)
    return fail(404, "NOT_FOUND", "The requested resource does not exist")


SYSTEM = System("salesforce", PREFIX, handle, server_error, throttled, bucket)
