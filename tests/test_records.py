"""TableSpec: what lands, what is quarantined and why, and when a type change is refused."""

from __future__ import annotations

import orjson
import polars as pl
import pyarrow as pa
import pytest

from ingestion.pages import read_json_page, records_at
from ingestion.quickbooks.tables import ENTITIES, INVOICE_LINES
from ingestion.records import (
    NUMBER,
    STRING,
    SchemaChangeRefused,
    TableSpec,
    misfit,
    types_fit,
)

SCHEMA = {
    "id": pl.Int64,
    "hours": pl.Float64,
    "spent_date": pl.String,
    "project": pl.Struct({"id": pl.Int64, "code": pl.String}),
}


def spec() -> TableSpec:
    return TableSpec(
        "time_entries",
        ("id",),
        SCHEMA,
        cursor="spent_date",
        critical={"hours": NUMBER, "spent_date": STRING, "project.id": NUMBER},
    )


def good(index: int, **overrides: object) -> dict:
    return {
        "id": index,
        "hours": 7.5,
        "spent_date": "2026-01-05",
        "project": {"id": 3, "code": "P-1"},
    } | overrides


def test_a_clean_page_lands_flat_and_typed() -> None:
    table, quarantined = spec().convert([good(1), good(2, hours=8)], "time")
    assert quarantined == []
    assert table.column_names == ["id", "hours", "spent_date", "project__id", "project__code"]
    assert table.column("hours").to_pylist() == [7.5, 8.0]
    assert not table.schema.field("id").nullable


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (good(9, hours="7,5"), "hours is string '7,5', expected number"),
        (good(9, hours="7.5"), "hours is string '7.5', expected number"),  # parseable, still refused
        (good(9, hours=True), "hours is boolean True, expected number"),
        (good(9, project={"id": "3", "code": "P-1"}), "project.id is string '3', expected number"),
        ({k: v for k, v in good(9).items() if k != "id"}, "missing id"),
    ],
)
def test_bad_records_are_quarantined_with_payload_and_reason(bad: dict, reason: str) -> None:
    table, quarantined = spec().convert([good(1), bad, good(2)], "time")
    assert table.column("id").to_pylist() == [1, 2]
    assert [row["reason"] for row in quarantined] == [reason]
    assert quarantined[0]["table_name"] == "time_entries" and '"hours"' in quarantined[0]["payload"]


def test_the_same_bad_payload_gets_the_same_quarantine_id() -> None:
    first = spec().convert([good(9, hours="7,5")], "time")[1][0]
    second = spec().convert([good(9, hours="7,5")], "time")[1][0]
    assert first["quarantine_id"] == second["quarantine_id"]


def test_a_non_critical_misfit_is_quarantined_not_crashing() -> None:
    table, quarantined = spec().convert([good(1), good(2, project="P-1")], "time")
    assert table.num_rows == 1
    assert "does not fit the declared schema" in quarantined[0]["reason"]


def test_new_fields_are_kept_so_the_table_evolves() -> None:
    table, _ = spec().convert([good(1, external_reference_v2="X-1")], "time")
    assert table.column("external_reference_v2").to_pylist() == ["X-1"]


def test_many_records_changing_type_is_a_refused_schema_change() -> None:
    table_spec = spec()
    page = [good(index, hours=str(7.5)) for index in range(30)]
    with pytest.raises(
        SchemaChangeRefused, match="column hours changed type from number to string in 30 of 30"
    ):
        table_spec.convert(page, "time")


def test_a_few_malformed_among_many_are_not_a_schema_change() -> None:
    table_spec = spec()
    page = [good(index) for index in range(200)] + [good(1000 + index, hours="7,5") for index in range(25)]
    table, quarantined = table_spec.convert(page, "time")
    assert table.num_rows == 200 and len(quarantined) == 25


# QuickBooks documents: `Line` is checked against its declared type without Polars' nested
# conversion, lands as the JSON text sent, and its child rows are built column-wise.


def invoice(index: int, *lines: dict) -> dict:
    return {
        "Id": str(index),
        "TxnDate": "2026-01-31",
        "DueDate": "2026-02-28",
        "CustomerRef": {"value": "7", "name": "Acme"},
        "TotalAmt": 100.0,
        "Balance": 0.0,
        "Line": list(lines),
        "MetaData": {"CreateTime": "2026-01-31T10:00:00Z", "LastUpdatedTime": "2026-01-31T10:00:00Z"},
    }


def line(amount: object = 100.0, qty: object = 1.0, linked: list | None = None, **extra: object) -> dict:
    detail = {"ItemRef": {"value": "1", "name": "Hours"}, "Qty": qty, "UnitPrice": 100.0}
    return (
        {"Amount": amount, "DetailType": "SalesItemLineDetail", "SalesItemLineDetail": detail}
        | ({"LinkedTxn": linked} if linked is not None else {})
        | extra
    )


def invoice_spec() -> TableSpec:
    return next(entity for entity in ENTITIES if entity.name == "Invoice").spec("9130")


def test_invoice_lines_land_as_the_json_sent_and_as_child_rows() -> None:
    linked = [{"TxnId": "51", "TxnType": "TimeActivity"}, {"TxnId": "52", "TxnType": "TimeActivity"}]
    sent = [invoice(1, line(linked=linked, Unknown="kept"), line(50.0)), invoice(2)]
    table, quarantined = invoice_spec().convert(sent, "quickbooks")
    assert quarantined == []
    assert [orjson.loads(text) for text in table.column("Line").to_pylist()] == [sent[0]["Line"], []]
    children = INVOICE_LINES.arrow(
        "9130",
        table.column("Id").to_pylist(),
        table.column("MetaData__LastUpdatedTime").to_pylist(),
        table.column("Line").to_pylist(),
    )
    assert children.select(
        ["invoice_id", "line_index", "linked_txn_index", "linked_txn_id", "amount"]
    ).to_pylist() == [
        {"invoice_id": "1", "line_index": 0, "linked_txn_index": 0, "linked_txn_id": "51", "amount": 100.0},
        {"invoice_id": "1", "line_index": 0, "linked_txn_index": 1, "linked_txn_id": "52", "amount": 100.0},
        {"invoice_id": "1", "line_index": 1, "linked_txn_index": 0, "linked_txn_id": None, "amount": 50.0},
    ]
    assert children.column("qty").type == pa.float64() and not children.schema.field("invoice_id").nullable


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (line(amount="7,5"), "Line[1].Amount is string '7,5', expected number"),
        (line(amount="100.00"), "Line[1].Amount is string '100.00', expected number"),
        (line(qty="2"), "does not fit the declared schema: Line[1].SalesItemLineDetail.Qty is string '2'"),
        (
            line(linked=[{"TxnId": 51}]),
            "does not fit the declared schema: Line[1].LinkedTxn[0].TxnId is number",
        ),
        ("a line", "Line[1].Amount is string 'a line', expected number"),
    ],
)
def test_an_invoice_whose_lines_misfit_is_quarantined_whole(bad: object, reason: str) -> None:
    table, quarantined = invoice_spec().convert([invoice(1, line()), invoice(2, line(), bad)], "quickbooks")
    assert table.column("Id").to_pylist() == ["1"]
    assert len(quarantined) == 1 and quarantined[0]["reason"].startswith(reason)
    # the payload is the record as sent, `Line` a list, not the text it would have landed as
    assert isinstance(orjson.loads(quarantined[0]["payload"])["Line"], list)


def test_line_amounts_changing_type_are_a_refused_schema_change() -> None:
    page = [invoice(index, line(amount="100.00")) for index in range(25)]
    with pytest.raises(SchemaChangeRefused, match="column Line__Amount changed type from number to string"):
        invoice_spec().convert(page, "quickbooks")


def test_types_fit_and_misfit_agree() -> None:
    dtype = pl.List(pl.Struct({"a": pl.Int64, "b": pl.List(pl.Struct({"c": pl.String}))}))
    fine = [[{"a": 1, "b": [{"c": "x"}, {"c": None}]}], None, [], [{"a": None}]]
    assert types_fit(fine, dtype)
    assert all(misfit(value, dtype, "v") is None for value in fine)
    for wrong, where in (
        ([{"a": 1.0}], "v[0].a is number 1.0"),
        ([{"a": True}], "v[0].a is boolean True"),
        ([{"b": [{"c": 3}]}], "v[0].b[0].c is number 3"),
        ({"a": 1}, "v is object"),
    ):
        assert not types_fit([wrong], dtype)
        assert (misfit(wrong, dtype, "v") or "").startswith(where)


# --- pages Arrow parses against the declared types (the typed path) ---------------------------------

PAGE_SCHEMA = pa.schema(
    [("time_entries", pa.list_(spec().record_type)), ("links", pa.struct([("next", pa.string())]))]
)


def typed(records: list) -> pa.StructArray | None:
    """A page through the typed path: parsed by Arrow, then checked; None = the Python path's turn."""
    body = orjson.dumps({"time_entries": records, "per_page": 2000, "links": {"next": None, "last": "x"}})
    return records_at(read_json_page(body, PAGE_SCHEMA), "time_entries", spec())


def test_a_typed_page_lands_exactly_as_the_python_path_lands_it() -> None:
    records = [good(1), good(2, hours=8, project=None), good(3, spent_date=None), {"id": 4}]
    arrow = typed(records)
    assert arrow is not None
    expected, quarantined = spec().convert(records, "time")
    assert quarantined == []
    assert spec().from_arrow(arrow).equals(expected)
    assert spec().from_arrow(arrow).schema == expected.schema


@pytest.mark.parametrize(
    "bad",
    [
        good(9, hours="7,5"),  # a string for a number
        good(9, hours="7.5"),
        good(9, hours=True),
        good(9, spent_date=20260105),  # a number for a string: Polars would make it "20260105"
        good(9, id=9.5),  # Polars' JSON reader would truncate it to 9
        good(9, project=3),  # a scalar for an object
        good(9, project={"id": 3, "code": "P-1", "extra": 1}),  # a nested field the schema lacks
        good(9, surprise="new"),  # a new field: the table evolves, on the Python path
        {k: v for k, v in good(9).items() if k != "id"},  # a missing key
        None,  # a null record
    ],
)
def test_a_page_with_anything_unexpected_takes_the_python_path(bad: object) -> None:
    assert typed([good(1), good(2)]) is not None
    assert typed([good(1), bad, good(2)]) is None


def test_a_page_that_is_not_json_takes_the_python_path() -> None:
    assert read_json_page(b'{"time_entries": [{"id": 1}', PAGE_SCHEMA) is None
    assert (
        records_at(read_json_page(b'{"links": {"next": null}}', PAGE_SCHEMA), "time_entries", spec()) is None
    )


@pytest.mark.parametrize("first_at", [150, 5_000])
def test_a_field_first_appearing_late_in_a_page_evolves_the_table(first_at: int) -> None:
    """Fault 9: a new field seen only from record 150 (or 5,000) of a page is kept, nulls before it."""
    page = [good(index) for index in range(first_at + 10)]
    for record in page[first_at:]:
        record["external_reference_v2"] = f"v2-{record['id']}"
        record["billing_code"] = {"code": "B-7", "weight": 2}
    table, quarantined = spec().convert(page, "time")
    assert quarantined == []
    assert table.num_rows == first_at + 10
    new = table.column("external_reference_v2").to_pylist()
    assert new[:first_at] == [None] * first_at
    assert new[first_at:] == [f"v2-{index}" for index in range(first_at, first_at + 10)]
    assert table.column("billing_code__weight").to_pylist()[first_at:] == [2] * 10


def test_a_new_field_that_cannot_have_one_type_names_table_and_field() -> None:
    page = [good(index, batch=index) for index in range(200)]
    page[180]["batch"] = "one-eighty"
    with pytest.raises(ValueError, match=r"table time_entries: new field 'batch'.*number.*string"):
        spec().convert(page, "time")
