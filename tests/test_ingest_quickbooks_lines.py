"""QuickBooks invoices and payments on the typed path: `Line` parsed by Arrow as a list of the
declared line structs, the child rows flattened from it; and the record-by-record path a page
falls back to, which must land the same rows (and quarantine what it always quarantined).

Pages come from the sandbox over HTTP (the tiny world, in pages of 3), so every kind of line
the generator and the ERP's own billing write is covered; the fallback pages are those pages
with one record changed.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from billable.sandbox_process import running_sandbox
from ingestion.http import make_client
from ingestion.pages import page_schema, read_json_page, records_at
from ingestion.quickbooks import LandedLines
from ingestion.quickbooks.query import (
    changes_query,
    company_path,
    query_pages,
    to_utc,
    utc_column,
    utc_stamps,
)
from ingestion.quickbooks.tables import ENTITIES, MINOR_VERSION, Entity
from ingestion.records import TableSpec
from sandbox.world import World

ROOT = Path(__file__).resolve().parent.parent
PAGE_SIZE = 3  # the tiny world has a few documents per realm: several pages each
DOCUMENTS = [entity for entity in ENTITIES if entity.lines]


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, list[str]]]:
    """The tiny world served over HTTP: (base URL, realms)."""
    world = tmp_path_factory.mktemp("qbo_lines") / "tiny"
    command = [
        sys.executable,
        "-m",
        "sandbox",
        "generate",
        "--preset",
        "tiny",
        "--seed",
        "5",
        "--out",
        str(world),
    ]
    generated = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert generated.returncode == 0, generated.stderr
    with running_sandbox(world) as base_url:
        yield base_url, sorted(World(world).realms)


@pytest.fixture(scope="module")
def served(sandbox: tuple[str, list[str]]) -> dict[tuple[str, str], list[bytes]]:
    """Every page body of every realm's invoices and payments, as the sandbox serves them."""
    base_url, realms = sandbox
    client = make_client(base_url, "sandbox-token")
    bodies: dict[tuple[str, str], list[bytes]] = {}
    for realm in realms:
        for entity in DOCUMENTS:
            pages = []
            for start in range(1, 100_000, PAGE_SIZE):
                query = changes_query(entity.name, None, PAGE_SIZE).replace(
                    "STARTPOSITION 1", f"STARTPOSITION {start}"
                )
                response = client.get(
                    company_path(realm, "query"), params={"query": query, "minorversion": MINOR_VERSION}
                )
                response.raise_for_status()
                if not orjson.loads(response.content)["QueryResponse"].get(entity.name):
                    break
                pages.append(response.content)
            bodies[(realm, entity.name)] = pages
    assert sum(map(len, bodies.values())) >= 10, "several pages of each document"
    return bodies


def entity_named(name: str) -> Entity:
    return next(entity for entity in DOCUMENTS if entity.name == name)


def landed_lines(entity: Entity, realm: str) -> LandedLines:
    assert entity.lines is not None
    return LandedLines(entity.lines, realm)


def typed_records(body: bytes, entity: Entity, spec: TableSpec) -> pa.StructArray | None:
    """The page through the typed path's reader and check, as `json_pages` does it."""
    selector = f"QueryResponse.{entity.name}"
    schema = page_schema({selector: pa.list_(spec.record_type)})
    return records_at(read_json_page(body, schema), selector, spec)


def parsed_records(body: bytes, entity: Entity) -> list[dict]:
    return [utc_stamps(record) for record in orjson.loads(body)["QueryResponse"][entity.name]]


def without_text(table: pa.Table) -> pa.Table:
    return table.drop_columns(["Line"])


def lines_as_declared(text: str | None, entity: Entity) -> list | None:
    """A `Line` JSON text read as the declared lines: fields not sent are null (the typed path
    writes every declared field; the record path writes the fields as sent)."""
    if text is None:
        return None
    line_type = pa.list_(entity.spec("").record_type.field("Line").type.value_type)
    return pa.array([orjson.loads(text)], line_type).to_pylist()[0]


def test_every_clean_page_takes_the_typed_path_and_lands_the_rows_of_the_record_path(
    served: dict[tuple[str, str], list[bytes]],
) -> None:
    lines_seen = 0
    for (realm, name), bodies in served.items():
        entity = entity_named(name)
        spec = entity.spec(realm)
        children = landed_lines(entity, realm)
        for body in bodies:
            records = typed_records(body, entity, spec)
            assert records is not None, f"{realm} {name}: a clean page fell back to the record path"
            via_arrow = spec.from_arrow(records)
            via_python, quarantined = spec.convert(parsed_records(body, entity), "quickbooks")
            assert quarantined == []
            assert via_arrow.schema == via_python.schema
            assert without_text(via_arrow).equals(without_text(via_python)), (realm, name)
            texts = zip(
                via_arrow.column("Line").to_pylist(), via_python.column("Line").to_pylist(), strict=True
            )
            for typed_text, sent_text in texts:
                assert lines_as_declared(typed_text, entity) == lines_as_declared(sent_text, entity)
            from_lists = children.rows(via_arrow, records)
            from_text = children.rows(via_python, None)
            assert from_lists is not None and from_text is not None
            assert from_lists.schema == from_text.schema
            assert from_lists.equals(from_text), (realm, name)
            lines_seen += from_lists.num_rows
    assert lines_seen > 100


def first_page(served: dict[tuple[str, str], list[bytes]], name: str) -> tuple[str, bytes]:
    """A full page of `name`."""
    for (realm, entity), bodies in sorted(served.items()):
        for body in bodies:
            if entity == name and len(orjson.loads(body)["QueryResponse"][name]) == PAGE_SIZE:
                return realm, body
    raise AssertionError(f"no page of {name}")


def rewrite(body: bytes, name: str, change: Callable[[dict], object]) -> bytes:
    """The page with its second record changed by `change(record)`."""
    page = orjson.loads(body)
    change(page["QueryResponse"][name][1])
    return orjson.dumps(page)


@pytest.mark.parametrize("name", ["Invoice", "Payment"])
@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda record: record["Line"][0].update(Amount="12,50"), "Line[0].Amount is string '12,50'"),
        (lambda record: record["Line"].insert(0, None), "Line[0] is null, expected object"),
        (lambda record: record["Line"][0].update(LinkedTxn=[None]), "Line[0].LinkedTxn[0] is null"),
        (lambda record: record.update(TotalAmt="1.00"), "TotalAmt is string '1.00', expected number"),
    ],
)
def test_a_page_with_a_malformed_document_falls_back_and_lands_the_others_alike(
    served: dict[tuple[str, str], list[bytes]], name: str, change: Callable[[dict], object], reason: str
) -> None:
    """The typed page and the same page with one record malformed: the second takes the record
    path, quarantines that record, and lands every other record and its lines as the first did."""
    realm, body = first_page(served, name)
    entity = entity_named(name)
    spec = entity.spec(realm)
    children = landed_lines(entity, realm)
    clean = typed_records(body, entity, spec)
    assert clean is not None and len(clean) == PAGE_SIZE
    broken = rewrite(body, name, change)
    assert typed_records(broken, entity, spec) is None, "a malformed page must not take the typed path"

    landed, quarantined = spec.convert(parsed_records(broken, entity), "quickbooks")
    assert len(quarantined) == 1 and reason in quarantined[0]["reason"]
    victim = orjson.loads(body)["QueryResponse"][name][1]["Id"]
    assert quarantined[0]["record_key"] == victim

    typed = spec.from_arrow(clean)
    keep = pc.not_equal(typed.column("Id"), victim)
    expected = typed.filter(keep)
    assert without_text(landed).equals(without_text(expected))
    expected_lines = children.rows(typed, clean)
    assert expected_lines is not None
    parent_key = children.lines.parent_key
    expected_lines = expected_lines.filter(pc.not_equal(expected_lines.column(parent_key), victim))
    assert children.rows(landed, None) == expected_lines


@pytest.mark.parametrize("name", ["Invoice", "Payment"])
def test_an_unknown_line_field_falls_back_and_is_kept_in_the_line_text(
    served: dict[tuple[str, str], list[bytes]], name: str
) -> None:
    """A field the declared line lacks: the page takes the record path (the typed path would drop
    the field), every record lands, the child rows are those of the typed page, and the parent's
    `Line` text keeps the field as sent."""
    realm, body = first_page(served, name)
    entity = entity_named(name)
    spec = entity.spec(realm)
    children = landed_lines(entity, realm)
    clean = typed_records(body, entity, spec)
    assert clean is not None
    broken = rewrite(body, name, lambda record: record["Line"][0].update(TaxCodeRef={"value": "TAX"}))
    assert typed_records(broken, entity, spec) is None

    landed, quarantined = spec.convert(parsed_records(broken, entity), "quickbooks")
    assert quarantined == []
    typed = spec.from_arrow(clean)
    assert without_text(landed).equals(without_text(typed))
    assert orjson.loads(landed.column("Line")[1].as_py())[0]["TaxCodeRef"] == {"value": "TAX"}
    assert children.rows(landed, None) == children.rows(typed, clean)


def test_the_resource_reader_hands_documents_on_as_arrow_records(sandbox: tuple[str, list[str]]) -> None:
    """`query_pages` with the document's spec, as the resource calls it: every page of invoices and
    payments arrives as Arrow records (none parsed into Python objects), stamps in UTC."""
    base_url, realms = sandbox
    client = make_client(base_url, "sandbox-token")
    for realm in realms:
        for entity in DOCUMENTS:
            pages = [
                page
                for page in query_pages(client, realm, entity.name, None, PAGE_SIZE, entity.spec(realm))
                if len(page)
            ]
            assert pages and all(isinstance(page, pa.StructArray) for page in pages), (realm, entity.name)
            stamps = pa.concat_arrays([page.field("MetaData").field("LastUpdatedTime") for page in pages])
            assert all(stamp.endswith("Z") for stamp in stamps.to_pylist())


@pytest.mark.parametrize(
    "stamp",
    [
        "2024-11-15T16:00:00Z",
        "2024-11-15T16:00:00.123Z",
        "2024-11-15T16:00:00.000Z",
        "2024-11-15T16:00:00.5Z",
        "2024-11-15T16:00:00.123456Z",
        "2024-11-15T16:00:00.000500Z",
        "2026-03-04T09:20:00-08:00",
        "2026-03-04T09:20:00.250+01:00",
        "2024-11-15T16:00:00+00:00",
        "2024-11-15T16:00:00",
        "2024-11-15 16:00:00Z",
        "2024-02-30T10:00:00Z",
        "garbage",
        None,
    ],
)
def test_stamps_move_to_utc_column_wise_exactly_as_one_by_one(stamp: str | None) -> None:
    column = pa.array(["2024-01-01T00:00:00Z", stamp, "2026-03-04T09:20:00-08:00"], pa.string())
    expected = [None if value is None else to_utc(value) for value in column.to_pylist()]
    assert utc_column(column).to_pylist() == expected


def test_stamps_already_in_utc_are_kept_without_a_copy() -> None:
    column = pa.array(["2024-11-15T16:00:00Z", None, "2024-11-15T16:00:00.123Z"], pa.string())
    assert utc_column(column) is column
