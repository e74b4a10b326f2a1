"""Harvest API v2: `/v2/users|clients|projects|tasks|time_entries|expenses`, page-numbered lists."""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from datetime import date
from urllib.parse import urlencode

import numpy as np
import orjson
import polars as pl

from sandbox.servers.encode import iso_z, json_rows, json_rows_variants, render_datetimes
from sandbox.servers.http_types import Context, Request, Response, System
from sandbox.servers.state import STAMP, Served
from sandbox.world import parse_ts

PREFIX = "/v2/"
RESOURCES = ("users", "clients", "projects", "tasks", "time_entries", "expenses")
DATED = ("time_entries", "expenses")
MAX_PER_PAGE = 2000
MALFORMED, MISSING_ID, DRIFTED = 1, 2, 4


def shape(frame: pl.DataFrame) -> pl.DataFrame:
    """Harvest records: id first, fields as stored, then created_at / updated_at from the versions."""
    frame = render_datetimes(frame).with_columns(
        iso_z("_created_at").alias("created_at"), iso_z("_updated_at").alias("updated_at")
    )
    fields = [
        c for c in frame.columns if not c.startswith("_") and c not in ("id", "created_at", "updated_at")
    ]
    meta = [c for c in frame.columns if c.startswith("_")]
    return frame.select(["id", *fields, "created_at", "updated_at", *meta])


def error(status: int, message: str) -> Response:
    return Response.json(status, {"message": message})


def not_found() -> Response:
    return Response.json(404, {"status": 404, "error": "Not Found"})


def server_error(status: int, context: Context) -> Response:
    texts = {500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable"}
    return Response.json(status, {"status": status, "error": texts.get(status, "Error")})


def throttled(retry_after: int, context: Context) -> Response:
    return Response.json(
        429,
        {
            "status": 429,
            "error": "Too Many Requests",
            "message": f"Rate limit exceeded; retry in {retry_after} seconds",
        },
    )


def bucket(request: Request) -> str:
    return request.header("harvest-account-id") or "-"


class _Filtered:
    """A few recent filtered views (from/to scans a whole entity; paging re-asks for the same one)."""

    def __init__(self, size: int = 8):
        self._items: OrderedDict[tuple, pl.DataFrame] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def get(self, key: tuple, build) -> pl.DataFrame:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        value = build()
        with self._lock:
            self._items[key] = value
            while len(self._items) > self._size:
                self._items.popitem(last=False)
        return value


FILTERED = _Filtered()


def _int_param(request: Request, name: str, default: int, low: int, high: int | None) -> int:
    raw = request.param(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"Invalid {name}: expected an integer, got {raw!r}") from None
    if value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise ValueError(f"Invalid {name}: must be {bound}, got {value}")
    return value


def _select(served: Served, request: Request, resource: str) -> pl.DataFrame:
    """The records matching `updated_since` (a binary search) and `from` / `to` (a cached scan)."""
    frame = served.frame
    if served.height == 0:
        return frame
    since = request.param("updated_since")
    if since:
        try:
            moment = parse_ts(since)
        except ValueError:
            raise ValueError(
                f"Invalid updated_since: expected an ISO 8601 date-time, got {since!r}"
            ) from None
        frame = frame.slice(served.first_after(moment, inclusive=False))
    low, high = request.param("from"), request.param("to")
    if resource in DATED and (low or high):
        for name, value in (("from", low), ("to", high)):
            if value:
                try:
                    date.fromisoformat(value)
                except ValueError:
                    raise ValueError(f"Invalid {name}: expected a date YYYY-MM-DD, got {value!r}") from None
        spent = pl.col("spent_date").cast(pl.String)
        condition = pl.lit(True)
        if low:
            condition = condition & (spent >= low)
        if high:
            condition = condition & (spent <= high)
        key = (id(served.frame), since, low, high)
        base = frame
        frame = FILTERED.get(key, lambda: base.filter(condition))
    return frame


def _page_json(page: pl.DataFrame, resource: str, request: Request, context: Context) -> str:
    """The page's records as JSON, with the malformed / drift faults applied when switched on."""
    faults = context.faults
    config = faults.config
    if page.height == 0 or (config.malformed_rate <= 0 and config.drift_from is None):
        return json_rows_variants(page, None, {})
    variant = np.zeros(page.height, dtype=np.int64)
    ids = page["id"].to_numpy()
    ticket = None
    if resource == "time_entries" and config.malformed_rate > 0:
        malformed, missing = faults.record_masks(ids)
        variant |= np.where(malformed, MALFORMED, 0) | np.where(missing, MISSING_ID, 0)
    drift_us = config.drift_us
    if drift_us is not None:
        drifted = page[STAMP].dt.epoch("us").to_numpy() >= drift_us
        variant |= np.where(drifted, DRIFTED, 0)
    if variant.any():
        ticket = faults.ticket("SERVE", request.target)
        for flag, fault in ((MALFORMED, "malformed"), (DRIFTED, "drift")):
            touched = ids[(variant & flag) != 0]
            if touched.size:
                faults.log(
                    ticket,
                    fault,
                    ids=touched.tolist(),
                    missing_id=ids[(variant & MISSING_ID) != 0].tolist() if flag == MALFORMED else None,
                )

    def transform(flags: int):
        def apply(frame: pl.DataFrame) -> pl.DataFrame:
            updates = []
            if flags & DRIFTED:
                updates.append(
                    pl.concat_str(pl.lit("v2-"), pl.col("id").cast(pl.String)).alias("external_reference_v2")
                )
            if "hours" in frame.columns and flags & (MALFORMED | DRIFTED):
                hours = pl.col("hours").cast(pl.String)
                updates.append(hours.str.replace(".", ",", literal=True) if flags & MALFORMED else hours)
            frame = frame.with_columns(updates) if updates else frame
            return frame.drop("id") if flags & MISSING_ID else frame

        return apply

    return json_rows_variants(page, variant, {int(v): transform(int(v)) for v in np.unique(variant) if v})


def _link(request: Request, page: int | None) -> str | None:
    if page is None:
        return None
    query = {name: values[-1] for name, values in request.query.items()}
    query["page"] = str(page)
    return f"{request.base_url}{request.path}?{urlencode(query)}"


def handle(request: Request, context: Context) -> Response:
    """Serve one Harvest request."""
    if request.refused_token("harvest", context):
        return Response.json(
            401,
            {
                "error": "invalid_token",
                "error_description": "The access token provided "
                "is expired, revoked, malformed or invalid for other reasons.",
            },
        )
    if not request.header("harvest-account-id"):
        return Response.json(
            403,
            {
                "error": "forbidden",
                "error_description": "Missing Harvest-Account-Id "
                "header: send the account id with every request",
            },
        )
    parts = request.path[len(PREFIX) :].strip("/").split("/")
    resource = parts[0].removesuffix(".json")
    if resource not in RESOURCES or len(parts) > 2:
        return not_found()
    if request.method != "GET":
        return Response.json(405, {"status": 405, "error": "Method Not Allowed"})
    served = context.state.served("time", resource, shape)
    if len(parts) == 2:
        match = (
            served.frame.filter(pl.col("id").cast(pl.String) == parts[1]) if served.height else served.frame
        )
        if match.height == 0:
            return not_found()
        return Response(200, json_rows(match)[0].encode())
    try:
        per_page = _int_param(request, "per_page", MAX_PER_PAGE, 1, MAX_PER_PAGE)
        page_number = _int_param(request, "page", 1, 1, None)
        frame = _select(served, request, resource)
    except ValueError as err:
        return error(422, str(err))
    total = frame.height
    total_pages = max(1, math.ceil(total / per_page))
    page = frame.slice((page_number - 1) * per_page, per_page) if total else frame
    next_page = page_number + 1 if page_number < total_pages else None
    previous_page = page_number - 1 if page_number > 1 else None
    rows = _page_json(page, resource, request, context)
    meta = {
        "per_page": per_page,
        "total_pages": total_pages,
        "total_entries": total,
        "next_page": next_page,
        "previous_page": previous_page,
        "page": page_number,
        "links": {
            "first": _link(request, 1),
            "next": _link(request, next_page),
            "previous": _link(request, previous_page),
            "last": _link(request, total_pages),
        },
    }
    body = b'{"' + resource.encode() + b'":[' + rows.encode() + b"]," + orjson.dumps(meta)[1:]
    return Response(200, body)


SYSTEM = System("harvest", PREFIX, handle, server_error, throttled, bucket)
