"""TableSpec: what lands, what is quarantined and why, and when a type change is refused."""

from __future__ import annotations

import polars as pl
import pytest

from ingestion.records import NUMBER, STRING, SchemaChangeRefused, TableSpec

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
