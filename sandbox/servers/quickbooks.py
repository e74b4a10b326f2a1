"""QuickBooks Online v3: `/v3/company/{realm}/query`, `preferences`, reads by id, and the live writes.

Served records are the realm's generated history (World.state of `erp/`) merged with the live
store (`sandbox.erp_live`; the writes' rules in `sandbox.erp_writes`): a live version of a record
replaces its history version.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

import numpy as np
import orjson
import polars as pl

from sandbox import erp_live, erp_writes
from sandbox.erp_live import HistoryView, LiveRow, QboError, us_of
from sandbox.erp_writes import WriteContext
from sandbox.servers.encode import iso_z, json_rows, json_rows_joined, render_datetimes
from sandbox.servers.faults import Ticket
from sandbox.servers.http_types import Context, Request, Response, System
from sandbox.servers.state import STAMP, Served, to_us
from sandbox.world import parse_ts

PREFIX = "/v3/company/"
ENTITIES = ("Customer", "Employee", "Item", "TimeActivity", "Invoice", "Payment", "ExchangeRate")
LIVE = ("TimeActivity", "Invoice", "Payment")
DEFAULT_MAX, MAX_RESULTS = 100, 1000
QUERY = re.compile(
    r"^\s*SELECT\s+(?P<what>\*|COUNT\(\s*\*\s*\))\s+FROM\s+(?P<entity>\w+)"
    r"(?:\s+WHERE\s+(?P<where>.+?))?(?:\s+ORDER\s*BY\s+(?P<order>[\w.]+)(?:\s+(?P<dir>ASC|DESC))?)?"
    r"(?:\s+STARTPOSITION\s+(?P<start>\S+))?(?:\s+MAXRESULTS\s+(?P<max>\S+))?\s*;?\s*$",
    re.IGNORECASE | re.DOTALL,
)
CONDITION = re.compile(
    r"^\s*(?P<field>[\w.]+)\s*(?:(?P<op>>=|<=|!=|>|<|=)\s*'(?P<value>[^']*)'|\s+IN\s*\((?P<values>[^)]*)\))\s*$",
    re.IGNORECASE,
)


def shape(frame: pl.DataFrame) -> pl.DataFrame:
    """QuickBooks records: fields, domain, sparse, Id, SyncToken (earlier versions), MetaData stamps."""
    frame = render_datetimes(frame).with_columns(
        pl.lit("QBO").alias("domain"),
        pl.lit(False).alias("sparse"),
        pl.col("_version").cast(pl.String).alias("SyncToken"),
        pl.struct(
            iso_z("_created_at").alias("CreateTime"), iso_z("_updated_at").alias("LastUpdatedTime")
        ).alias("MetaData"),
    )
    if "Id" in frame.columns:
        frame = frame.with_columns(pl.col("Id").cast(pl.String))
    tail = [c for c in ("domain", "sparse", "Id", "SyncToken", "MetaData") if c in frame.columns]
    fields = [c for c in frame.columns if not c.startswith("_") and c not in tail]
    meta = [c for c in frame.columns if c.startswith("_")]
    return frame.select([*fields, *tail, *meta])


def now(context: Context) -> str:
    return erp_live.qbo_time(us_of(context.state.clock))


def fault(status: int, kind: str, errors: list[dict], context: Context) -> Response:
    return Response.json(status, {"Fault": {"Error": errors, "type": kind}, "time": now(context)})


def validation(code: str, message: str, detail: str, context: Context, status: int = 400) -> Response:
    return fault(status, "ValidationFault", [{"Message": message, "Detail": detail, "code": code}], context)


def parse_error(detail: str, context: Context) -> Response:
    return validation("4000", "Error parsing query", f"QueryParserError: {detail}", context)


def server_error(status: int, context: Context) -> Response:
    return fault(
        status,
        "SystemFault",
        [
            {
                "Message": "An application error has occurred while processing your request",
                "Detail": "System Failure Error: An unexpected error occurred while accessing or "
                "saving your data. Please wait a few minutes and try again.",
                "code": "10000",
            }
        ],
        context,
    )


def throttled(
    retry_after: int,
    context: Context,
    detail: str = "The request limit was reached: at most 500 requests per minute "
    "and 10 concurrent requests per company",
) -> Response:
    return fault(
        429,
        "ThrottleExceeded",
        [
            {
                "Message": "message=ThrottleExceeded; errorCode=003001; statusCode=429",
                "Detail": detail,
                "code": "003001",
            }
        ],
        context,
    )


def batch_throttled(realm: str, request: Request, context: Context) -> Response | None:
    """QuickBooks' batch limit (40 batch requests per minute per realm, apart from the 500): the
    429 with `Retry-After` when this /batch call is over it (with `--rate-limit`), else None."""
    faults = context.faults
    retry_after = faults.throttle("quickbooks", realm, kind="batch")
    if retry_after is None:
        return None
    # Logged without drawing a new ticket: the request's draws stay those `App.serve` made.
    faults.log(Ticket(request.method, request.target, -1), "batch_rate_limit", retry_after=retry_after)
    allowed = int(faults.config.limit("quickbooks")["batch_requests"])
    window = faults.config.limit("quickbooks")["batch_window_s"]
    response = throttled(
        retry_after,
        context,
        f"The batch request limit was reached: at most {allowed} batch requests per "
        f"{window:g} seconds per company",
    )
    response.headers["Retry-After"] = str(retry_after)
    return response


def bucket(request: Request) -> str:
    return request.path[len(PREFIX) :].split("/", 1)[0]


# --- the merged (history + live) view ------------------------------------------------------
@dataclass
class Merged:
    """Every record of one realm's entity as of the clock, in (stamp, Id) order."""

    order: pl.DataFrame  # columns: stamp (µs), Id, src (0 history / 1 live), idx
    stamps: np.ndarray
    history: Served
    live: list[LiveRow]


def merged(context: Context, realm: str, entity: str) -> Merged:
    history = context.state.served("erp", entity, shape, realm)
    live = context.live.current(realm, entity, to_us(context.state.clock)) if entity in LIVE else []
    generation = context.live.generation() if entity in LIVE else 0

    def build() -> Merged:
        ids = (
            history.frame["Id"]
            if history.height and "Id" in history.frame.columns
            else pl.Series("Id", [None] * history.height, dtype=pl.String)
        )
        frame = pl.DataFrame(
            {
                "stamp": history.stamps,
                "Id": ids,
                "src": np.zeros(history.height, dtype=np.int8),
                "idx": np.arange(history.height, dtype=np.int64),
            },
            schema={"stamp": pl.Int64, "Id": pl.String, "src": pl.Int8, "idx": pl.Int64},
        )
        if live:
            live_ids = [row.id for row in live]
            frame = frame.filter(~pl.col("Id").is_in(live_ids))
            extra = pl.DataFrame(
                {
                    "stamp": [row.stamp_us for row in live],
                    "Id": live_ids,
                    "src": [1] * len(live),
                    "idx": list(range(len(live))),
                },
                schema=frame.schema,
            )
            frame = pl.concat([frame, extra]).sort(["stamp", "Id"])
        return Merged(frame, frame["stamp"].to_numpy(), history, live)

    key = ("qbo-merged", realm, entity)
    return context.state.cached(key, (id(history), generation), build)  # type: ignore[return-value]


@dataclass
class Query:
    entity: str
    count: bool
    conditions: list[tuple[str, str, int | list[str]]]  # (field, op, µs) or ("id", "in", ids)
    descending: bool
    start: int
    max_results: int


def parse(text: str, context: Context) -> Query | Response:
    match = QUERY.match(text or "")
    if not match:
        return parse_error(
            f"Encountered an unexpected token in {text!r}: expected SELECT * FROM <Entity> "
            "[WHERE ...] [ORDERBY ...] [STARTPOSITION n] [MAXRESULTS m]",
            context,
        )
    entity = next((e for e in ENTITIES if e.lower() == match["entity"].lower()), None)
    if entity is None:
        return parse_error(
            f'Encountered " <IDENTIFIER> "{match["entity"]} "": {match["entity"]} is not a '
            f"queryable entity; use one of {', '.join(ENTITIES)}",
            context,
        )
    conditions: list[tuple[str, str, int | list[str]]] = []
    if match["where"]:
        for clause in re.split(r"\s+AND\s+", match["where"], flags=re.IGNORECASE):
            cond = CONDITION.match(clause)
            if not cond:
                return parse_error(f"Encountered unexpected text in WHERE: {clause.strip()!r}", context)
            field = cond["field"]
            if field.lower() in ("metadata.lastupdatedtime", "metadata.createtime"):
                if cond["op"] is None or cond["op"] == "!=":
                    return parse_error(f"operator not supported on {field}", context)
                try:
                    moment = parse_ts(cond["value"] if "T" in cond["value"] else cond["value"] + "T00:00:00Z")
                except ValueError:
                    return validation(
                        "4001",
                        "Invalid query",
                        f"QueryValidationError: value {cond['value']!r} is not a valid date-time for {field}",
                        context,
                    )
                conditions.append((field.lower(), cond["op"], to_us(moment)))
            elif field.lower() == "id":
                values = (
                    [cond["value"]]
                    if cond["op"] == "="
                    else [v.strip().strip("'") for v in (cond["values"] or "").split(",") if v.strip()]
                )
                if cond["op"] not in (None, "="):
                    return parse_error(f"operator {cond['op']} not supported on Id", context)
                conditions.append(("id", "in", values))
            else:
                return validation(
                    "4001",
                    "Invalid query",
                    f"QueryValidationError: property '{field}' is not "
                    f"queryable in this sandbox (use MetaData.LastUpdatedTime, MetaData.CreateTime "
                    "or Id)",
                    context,
                )
    descending = False
    if match["order"] and match["order"].lower() == "metadata.lastupdatedtime":
        descending = (match["dir"] or "").upper() == "DESC"
    numbers = {}
    for name, default in (("start", 1), ("max", DEFAULT_MAX)):
        raw = match[name]
        if raw is None:
            numbers[name] = default
            continue
        if not raw.isdigit() or int(raw) < 1:
            return parse_error(
                f"{'STARTPOSITION' if name == 'start' else 'MAXRESULTS'} expects a positive "
                f"integer, got {raw!r}",
                context,
            )
        numbers[name] = int(raw)
    count = match["what"] != "*"
    return Query(entity, count, conditions, descending, numbers["start"], min(numbers["max"], MAX_RESULTS))


def select(view: Merged, query: Query) -> pl.DataFrame:
    frame = view.order
    for field, op, value in query.conditions:
        if isinstance(value, list):  # Id = / IN: the parser gives only Id conditions a list
            frame = frame.filter(pl.col("Id").is_in(value))
        elif field == "metadata.lastupdatedtime":
            if frame is view.order and op in (">", ">="):
                start = int(np.searchsorted(view.stamps, value, side="right" if op == ">" else "left"))
                frame = frame.slice(start)
            else:
                column = pl.col("stamp")
                frame = frame.filter(
                    {
                        ">": column > value,
                        ">=": column >= value,
                        "<": column < value,
                        "<=": column <= value,
                        "=": column == value,
                    }[op]
                )
        else:  # CreateTime lives in the records; compare on the rendered stamps
            created = _created_us(view, frame)
            keep = {
                ">": created > value,
                ">=": created >= value,
                "<": created < value,
                "<=": created <= value,
                "=": created == value,
            }[op]
            frame = frame.filter(pl.Series(keep))
    return frame.reverse() if query.descending else frame


def _created_us(view: Merged, frame: pl.DataFrame) -> np.ndarray:
    out = np.zeros(frame.height, dtype=np.int64)
    history_created = (
        view.history.frame["_created_at"].dt.epoch("us").to_numpy()
        if view.history.height
        else np.zeros(0, dtype=np.int64)
    )
    for position, (src, idx) in enumerate(zip(frame["src"].to_list(), frame["idx"].to_list(), strict=True)):
        if src == 0:
            out[position] = history_created[idx]
        else:
            stamp = json.loads(view.live[idx].json)["MetaData"]["CreateTime"]
            out[position] = to_us(parse_ts(stamp))
    return out


def encode_page(view: Merged, page: pl.DataFrame, context: Context, request: Request) -> str:
    """The page's records as comma-joined JSON, history rows encoded by polars, live rows as stored."""
    drift_us = context.faults.config.drift_us
    sources = page["src"].to_numpy()
    indices = page["idx"].to_numpy()
    if drift_us is None and not sources.any():
        return json_rows_joined(view.history.frame[indices])
    rows: list[str] = [""] * page.height
    history_pos = np.flatnonzero(sources == 0)
    if history_pos.size:
        subset = view.history.frame[indices[history_pos]]
        drifted = (
            np.zeros(subset.height, dtype=bool)
            if drift_us is None
            else (subset[STAMP].dt.epoch("us").to_numpy() >= drift_us)
        )
        for mask, transform in ((~drifted, None), (drifted, _drift)):
            if mask.any():
                part = subset[np.flatnonzero(mask)]
                for position, row in zip(
                    history_pos[mask].tolist(), json_rows(transform(part) if transform else part), strict=True
                ):
                    rows[position] = row
    touched = []
    for position in np.flatnonzero(sources == 1).tolist():
        live = view.live[int(indices[position])]
        text = live.json
        if drift_us is not None and live.stamp_us >= drift_us:
            record = json.loads(text)
            record["external_reference_v2"] = f"v2-{record['Id']}"
            if "Hours" in record:
                record["Hours"] = str(record["Hours"])
            text = json.dumps(record)
            touched.append(record["Id"])
        rows[position] = text
    if drift_us is not None:
        stamps = page["stamp"].to_numpy()
        touched = page["Id"].filter(pl.Series(stamps >= drift_us)).to_list()
        if touched:
            context.faults.log(context.faults.ticket("SERVE", request.target), "drift", ids=touched)
    return ",".join(rows)


def _drift(frame: pl.DataFrame) -> pl.DataFrame:
    updates = [
        pl.concat_str(pl.lit("v2-"), pl.col("Id").cast(pl.String)).alias("external_reference_v2")
        if "Id" in frame.columns
        else pl.lit("v2").alias("external_reference_v2")
    ]
    if "Hours" in frame.columns:
        updates.append(pl.col("Hours").cast(pl.String))
    return frame.with_columns(updates)


def query_response(realm: str, request: Request, context: Context) -> Response:
    text = request.param("query")
    if not text and request.method == "POST":
        text = request.body.decode("utf-8", "replace")
    parsed = parse(text or "", context)
    if isinstance(parsed, Response):
        return parsed
    view = merged(context, realm, parsed.entity)
    frame = select(view, parsed)
    if parsed.count:
        return Response.json(200, {"QueryResponse": {"totalCount": frame.height}, "time": now(context)})
    page = frame.slice(parsed.start - 1, parsed.max_results)
    if page.height == 0:
        return Response.json(200, {"QueryResponse": {}, "time": now(context)})
    rows = encode_page(view, page, context, request)
    tail = {"startPosition": parsed.start, "maxResults": page.height}
    body = (
        b'{"QueryResponse":{"'
        + parsed.entity.encode()
        + b'":['
        + rows.encode()
        + b"],"
        + orjson.dumps(tail)[1:]
        + b',"time":'
        + orjson.dumps(now(context))
        + b"}"
    )
    return Response(200, body)


def preferences(realm: str, context: Context) -> Response:
    history = _history(context)
    close = history.book_close(realm)
    home = context.state.world.realms[realm].get("currency") or "USD"
    prefs = {
        "AccountingInfoPrefs": {
            "BookCloseDate": close.isoformat() if close else None,
            "TrackDepartments": False,
            "FirstMonthOfFiscalYear": "January",
        },
        "CurrencyPrefs": {"MultiCurrencyEnabled": True, "HomeCurrency": {"value": home}},
        "TimeTrackingPrefs": {"UseServices": True, "BillCustomers": True, "ShowBillRateToAll": False},
        "domain": "QBO",
        "sparse": False,
        "Id": "1",
        "SyncToken": "0",
    }
    return Response.json(200, {"Preferences": prefs, "time": now(context)})


def _history(context: Context) -> HistoryView:
    view = getattr(context, "_history", None)
    if view is None:
        view = HistoryView(lambda: context.state.world)
        context._history = view  # type: ignore[attr-defined]
    return view


def read_one(realm: str, entity: str, record_id: str, context: Context) -> Response:
    view = merged(context, realm, entity)
    page = view.order.filter(pl.col("Id") == record_id)
    if page.height == 0:
        return validation(
            "610",
            "Object Not Found",
            f"Object Not Found : {entity} {record_id} does not exist in company {realm}",
            context,
        )
    row = encode_page(view, page, context, Request("GET", "", "", {}, {}, b"", ""))
    return Response(
        200, b'{"' + entity.encode() + b'":' + row.encode() + b',"time":' + orjson.dumps(now(context)) + b"}"
    )


def write(realm: str, entity: str | None, request: Request, context: Context) -> Response:
    """A live write (one object or a batch), idempotent per requestid."""
    try:
        body = json.loads(request.body or b"null")
    except ValueError as err:
        return validation(
            "2010",
            "Request has invalid or unsupported property",
            f"the request body is not valid JSON: {err}",
            context,
        )
    operation = (
        request.param("operation") or ("update" if isinstance(body, dict) and body.get("Id") else "create")
    ).lower()
    if operation not in ("create", "update", "delete"):
        return validation(
            "2010",
            "Request has invalid or unsupported property",
            f"operation {operation!r} is not supported; use create, update or delete",
            context,
        )
    write_ctx = WriteContext(realm, context.state.clock, _history(context))

    def run(txn) -> tuple[int, dict]:
        if entity is None:
            return erp_writes.batch(txn, write_ctx, body)
        return erp_writes.write(txn, write_ctx, entity, body, operation)

    try:
        status, answer, replayed = context.live.execute(realm, request.param("requestid"), run)
    except QboError as err:
        status, answer, replayed = err.status, {"Fault": err.fault()}, False
    response = Response.json(status, {**answer, "time": now(context)})
    response.is_write = not replayed
    return response


def handle(request: Request, context: Context) -> Response:
    """Serve one QuickBooks request."""
    if refused := request.refused_token("quickbooks", context):
        return fault(
            401,
            "AuthenticationFault",
            [
                {
                    "Message": "message=AuthenticationFailed; errorCode=003200; statusCode=401",
                    "Detail": f"Authentication Failed: {refused} bearer token",
                    "code": "3200",
                }
            ],
            context,
        )
    parts = request.path[len(PREFIX) :].strip("/").split("/")
    realm = parts[0]
    if realm not in context.state.world.realms:
        return fault(
            403,
            "AuthorizationFault",
            [
                {
                    "Message": "message=ApplicationAuthorizationFailed; errorCode=003100; statusCode=403",
                    "Detail": f"Company {realm} is not connected to this application (unknown realm)",
                    "code": "003100",
                }
            ],
            context,
        )
    action = parts[1].lower() if len(parts) > 1 else ""
    if action == "query" and len(parts) == 2:
        return query_response(realm, request, context)
    if action == "preferences" and len(parts) == 2 and request.method == "GET":
        return preferences(realm, context)
    entity = next((e for e in ENTITIES if e.lower() == action), None)
    if request.method == "POST" and len(parts) == 2:
        if action == "batch":
            return batch_throttled(realm, request, context) or write(realm, None, request, context)
        if entity in erp_writes.WRITERS:
            return write(realm, entity, request, context)
    if request.method == "GET" and entity is not None and len(parts) == 3:
        return read_one(realm, entity, parts[2], context)
    return validation(
        "2010",
        "Unsupported Operation",
        f"Operation {request.method} {'/'.join(parts[1:])} is not supported",
        context,
        status=400,
    )


SYSTEM = System("quickbooks", PREFIX, handle, server_error, throttled, bucket)
