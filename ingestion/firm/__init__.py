"""The firm's declaration (`firm.legal_entities`, see declaration.py) → `raw_firm.legal_entities`.

Not a system the firm runs but its own configuration, landed like a source so the warehouse reads
the same legal entities (codes, names, currencies, ERP realms) the loaders were given. Replaced
wholesale each run: a changed declaration (a new entity, a renamed one, a realm) takes effect at
the next load, and an entity taken out of it is gone.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import dlt
import pyarrow as pa

from ingestion.firm.declaration import FIELDS, declared_legal_entities
from ingestion.landing import Declared

# Every column text and nullable, declared: dlt creates no column for a field that is null in every
# row (an entity without a realm), and the staging model reads all five.
SCHEMA = pa.schema([pa.field(name, pa.string(), nullable=name != "code") for name in FIELDS])


@dlt.source(name="firm", max_table_nesting=0)
def firm() -> Iterator[Any]:
    """The firm's legal entities as declared, one row each."""
    entities = declared_legal_entities()

    @dlt.resource(name="legal_entities", write_disposition="replace", primary_key="code")
    def legal_entities() -> Iterator[pa.Table]:
        yield pa.Table.from_pylist(
            [{name: getattr(entity, name) for name in FIELDS} for entity in entities], schema=SCHEMA
        )

    yield legal_entities


def declared_tables() -> list[Declared]:
    """The one table this source lands (a declaration has at least one entity, so it always has
    rows; declared like every source's tables all the same)."""
    return [Declared("legal_entities", SCHEMA, ("code",), "replace")]
