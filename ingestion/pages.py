"""The one page reader: a JSON list read page by page, typed by Arrow when it can be.

A source says where its list is (`path`, `params`), where the records sit in a page (`selector`,
`a.b`) and how to ask for the next page (a `NextPage` rule: a link in the body, a position in the
query). `json_pages` does the rest, the same way for every source: each answer is first given to
Arrow's JSON reader with the table's declared record type as the explicit schema (C++, without
the GIL); a page that parses and `TableSpec.fits` is handed on as Arrow records, which only need
flattening. Any other page (a malformed record, a new field, a missing key) is parsed with orjson
and handed on as a list of records for `land_pages`' record-by-record checks, which quarantine.
Without a spec every page takes the parsed way (a list with no declared record type).
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.json as pa_json
from requests import Response

from ingestion.http import OrjsonRESTClient, raise_for_status
from ingestion.records import TableSpec, dotted


def read_json_page(body: bytes, schema: pa.Schema) -> pa.Table | None:
    """One JSON page (one object) parsed by Arrow's JSON reader against `schema`, in C++ and without
    the GIL: a one-row table, its fields that `schema` does not declare inferred. None when the
    page does not parse against those types; the caller then parses it with orjson and takes the
    record-by-record path, which says what was wrong and quarantines."""
    options = pa_json.ReadOptions(block_size=len(body) + 1024, use_threads=False)
    parse = pa_json.ParseOptions(
        explicit_schema=schema, unexpected_field_behavior="infer", newlines_in_values=True
    )
    try:
        table = pa_json.read_json(io.BytesIO(body), read_options=options, parse_options=parse)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    return table if table.num_rows == 1 else None


def records_at(page: pa.Table | None, path: str, spec: TableSpec) -> pa.StructArray | None:
    """The records list at `path` (`a.b`) of a page from `read_json_page`, if all of it `fits` `spec`."""
    first, *rest = path.split(".")
    if page is None or first not in page.column_names:
        return None
    values: pa.Array = page.column(first).combine_chunks()
    for part in rest:
        if values.null_count or not pa.types.is_struct(values.type) or part not in values.type.names:
            return None
        values = values.field(part)
    if values.null_count or not pa.types.is_list(values.type):
        return None
    records = values.flatten()
    return records if spec.fits(records) else None


def page_schema(paths: Mapping[str, pa.DataType]) -> pa.Schema:
    """The schema of a page from the dotted paths it must have (`QueryResponse.Invoice`, `links.next`)
    and their types, as nested structs."""
    tree: dict[str, Any] = {}
    for path, kind in paths.items():
        *parents, leaf = path.split(".")
        node = tree
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = kind

    def fields(node: dict[str, Any]) -> list[pa.Field]:
        return [
            pa.field(name, pa.struct(fields(child)) if isinstance(child, dict) else child)
            for name, child in node.items()
        ]

    return pa.schema(fields(tree))


@dataclass
class Page:
    """One answer of a list, read once: its records, typed by Arrow (`pa.StructArray`) or parsed
    JSON (`list[dict]`), and the rest of the body, for the next-page rule (`value`)."""

    records: pa.StructArray | list[dict]
    typed: pa.Table | None  # the Arrow parse of the whole page, when the records came from it
    response: Response

    def value(self, path: str) -> Any:
        """The body's value at `path` (`links.next`), from whichever parse the page took."""
        if self.typed is not None:  # read column-wise: the records' column is not converted
            first, *rest = path.split(".")
            if first not in self.typed.column_names:
                return None
            values: pa.Array = self.typed.column(first).combine_chunks()
            for part in rest:
                if not pa.types.is_struct(values.type) or part not in values.type.names:
                    return None
                values = values.flatten()[values.type.get_field_index(part)]  # parent nulls kept
            return values[0].as_py()
        body = self.response.json()
        return dotted(body, path) if isinstance(body, dict) else None


# The next request after a page: (path or absolute URL, query parameters), None after the last page.
NextPage = Callable[[Page, str, dict[str, Any]], tuple[str, dict[str, Any]] | None]


@dataclass(frozen=True)
class NextLink:
    """A `NextPage` rule: the URL of the next page at `path` in the body (Harvest's `links.next`);
    it carries the query parameters, so none are added. No link: the last page."""

    path: str

    def __call__(self, page: Page, url: str, params: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
        link = page.value(self.path)
        return (link, {}) if link else None

    @property
    def fields(self) -> dict[str, pa.DataType]:
        return {self.path: pa.string()}


def json_pages(
    client: OrjsonRESTClient,
    path: str,
    params: dict[str, Any],
    selector: str,
    next_page: NextPage,
    spec: TableSpec | None = None,
    fields: Mapping[str, pa.DataType] | None = None,
) -> Iterator[Page]:
    """Every page of a list, from `path` with `params` until `next_page` says there is none.

    With `spec`, each page is first parsed by Arrow against the declared record type at `selector`
    (and `fields`: other paths of the body the next-page rule reads, with their types); the
    records are typed when the whole page `fits`. Otherwise, and without `spec`, the records are
    the parsed JSON list at `selector` (none when the body has none there). An HTTP error status
    raises requests' HTTPError, after dlt's retries, naming the URL.
    """
    schema = page_schema({selector: pa.list_(spec.record_type), **(fields or {})}) if spec else None
    request: tuple[str, dict[str, Any]] | None = (path, params)
    while request is not None:
        url, query = request
        response = client.get(url, params=query)
        raise_for_status(response)
        page = None
        if schema is not None and spec is not None:
            typed = read_json_page(response.content, schema)
            records = records_at(typed, selector, spec)
            if records is not None:
                page = Page(records, typed, response)
        if page is None:
            body = response.json()
            listed = dotted(body, selector) if isinstance(body, dict) else None
            page = Page(list(listed or []), None, response)
        yield page
        request = next_page(page, url, query)
