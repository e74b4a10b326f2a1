"""Kantata OX (Mavenlink) API v1: `/api/v1/<resource>` with the keyed `results` envelope."""

from __future__ import annotations

import math

import numpy as np
import orjson
import polars as pl

from sandbox.servers.encode import iso_z, render_datetimes, served_columns
from sandbox.servers.http_types import Context, Request, Response, System
from sandbox.servers.state import STAMP
from sandbox.world import parse_ts

PREFIX = "/api/v1/"
RESOURCES = ("workspaces", "stories", "assignments", "rate_cards", "rate_card_versions")
DEFAULT_PER_PAGE, MAX_PER_PAGE = 20, 200


def shape(frame: pl.DataFrame) -> pl.DataFrame:
    """Kantata records: ids as strings, created_at / updated_at from the versions."""
    frame = render_datetimes(frame).with_columns(
        pl.col("id").cast(pl.String),
        iso_z("_created_at").alias("created_at"),
        iso_z("_updated_at").alias("updated_at"),
    )
    fields = [
        c for c in frame.columns if not c.startswith("_") and c not in ("id", "created_at", "updated_at")
    ]
    meta = [c for c in frame.columns if c.startswith("_")]
    return frame.select(["id", *fields, "created_at", "updated_at", *meta])


def errors(status: int, message: str, kind: str = "system", field: str | None = None) -> Response:
    error = {"type": kind, "message": message}
    if field:
        error["field"] = field
    return Response.json(status, {"errors": [error]})


def server_error(status: int, context: Context) -> Response:
    return errors(status, "An unexpected error occurred; please try again later.")


def throttled(retry_after: int, context: Context) -> Response:
    return errors(
        429, f"Rate limit exceeded. Please wait {retry_after} seconds before retrying.", "rate_limit"
    )


def bucket(request: Request) -> str:
    return request.bearer() or "-"


def _positive(request: Request, name: str, default: int) -> int:
    raw = request.param(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(name, f"{name} must be a positive integer, got {raw!r}") from None
    if value < 1:
        raise ValueError(name, f"{name} must be a positive integer, got {value}")
    return value


def handle(request: Request, context: Context) -> Response:
    """Serve one Kantata request."""
    if request.refused_token("kantata", context):
        return errors(
            401,
            "You must be logged in to access this resource (missing or invalid bearer token).",
            "authentication",
        )
    parts = request.path[len(PREFIX) :].strip("/").split("/")
    resource = parts[0].removesuffix(".json")
    if resource not in RESOURCES or len(parts) > 2:
        return errors(404, f"No route matches {request.path}", "not_found")
    if request.method != "GET":
        return errors(405, f"{request.method} is not supported on {request.path} in this sandbox", "method")
    served = context.state.served("psa", resource, shape)
    frame = served.frame
    try:
        per_page = min(_positive(request, "per_page", DEFAULT_PER_PAGE), MAX_PER_PAGE)
        page_number = _positive(request, "page", 1)
        after = request.param("updated_after")
        if after and served.height:
            try:
                moment = parse_ts(after)
            except ValueError:
                raise ValueError(
                    "updated_after", f"updated_after must be an ISO 8601 time, got {after!r}"
                ) from None
            frame = frame.slice(served.first_after(moment, inclusive=False))
        only = request.param("only")
        if len(parts) == 2:
            only = parts[1].removesuffix(".json")
        if only is not None and served.height:
            wanted = [value.strip() for value in only.split(",") if value.strip()]
            if not all(value.isdigit() for value in wanted):
                raise ValueError("only", f"only must be a comma separated list of ids, got {only!r}")
            frame = frame.filter(pl.col("id").is_in(wanted))
    except ValueError as err:
        field, message = err.args
        return errors(422, message, "argument", field)
    total = frame.height
    page = frame.slice((page_number - 1) * per_page, per_page)
    results, objects = _encode(page, resource, request, context)
    meta = {
        "count": total,
        "page_count": max(1, math.ceil(total / per_page)),
        "page_number": page_number,
        "page_size": per_page,
    }
    body = (
        b'{"count":'
        + str(total).encode()
        + b',"results":'
        + orjson.dumps(results)
        + b',"'
        + resource.encode()
        + b'":{'
        + objects.encode()
        + b'},"meta":'
        + orjson.dumps(meta)
        + b"}"
    )
    return Response(200, body)


def _encode(page: pl.DataFrame, resource: str, request: Request, context: Context) -> tuple[list, str]:
    """(`results` list, the `"id":{...}` pairs) of a page, drift applied when switched on."""
    if page.height == 0:
        return [], ""
    ids = page["id"].to_list()
    results = [{"key": resource, "id": record_id} for record_id in ids]
    drift_us = context.faults.config.drift_us
    variant = None
    if drift_us is not None:
        variant = page[STAMP].dt.epoch("us").to_numpy() >= drift_us
    columns = served_columns(page)

    def encoded(frame: pl.DataFrame) -> list[str]:
        return (
            frame.select(
                pl.struct(
                    columns
                    if "external_reference_v2" not in frame.columns
                    else [*columns, "external_reference_v2"]
                ).struct.json_encode()
            )
            .to_series()
            .to_list()
        )

    if variant is None or not variant.any():
        rows = encoded(page)
    else:
        rows = [""] * page.height
        plain, drifted = np.flatnonzero(~variant), np.flatnonzero(variant)
        for position, row in zip(plain.tolist(), encoded(page[plain]), strict=True):
            rows[position] = row
        extra = page[drifted].with_columns(
            pl.concat_str(pl.lit("v2-"), pl.col("id")).alias("external_reference_v2")
        )
        for position, row in zip(drifted.tolist(), encoded(extra), strict=True):
            rows[position] = row
        context.faults.log(
            context.faults.ticket("SERVE", request.target), "drift", ids=[ids[i] for i in drifted.tolist()]
        )
    return results, ",".join(f'"{record_id}":{row}' for record_id, row in zip(ids, rows, strict=True))


SYSTEM = System("kantata", PREFIX, handle, server_error, throttled, bucket)
