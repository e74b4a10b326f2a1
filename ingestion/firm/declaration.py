"""The firm's own declaration of its legal entities: `firm.legal_entities` in the configuration.

One list, declared once, read by everything that needs to know the firm: the `firm` source lands it
for the warehouse (`raw_firm.legal_entities`), and the QuickBooks source loads its realms when
`sources.quickbooks.realms` is not set. It lives in its own `[firm]` section, not under one source,
because more than one source reads it. The shape is the sandbox world's `legal_entities`
(docs/sandbox.md):

    [firm]
    legal_entities = [
      {code = "US", name = "Brightline Advisory Inc.", country = "US", currency = "USD",
       realm_id = "9130350000000001"},
    ]

or `FIRM__LEGAL_ENTITIES='[{"code": "US", ...}]'` (JSON) in the environment.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import dlt
import orjson

KEY = "firm.legal_entities"
ENV = "FIRM__LEGAL_ENTITIES"
FIELDS = ("code", "name", "country", "currency", "realm_id")
CURRENCY = re.compile(r"[A-Z]{3}")
EXAMPLE = (
    '[{"code": "US", "name": "Example Partners Inc.", "country": "US", "currency": "USD", '
    '"realm_id": "9130350000000001"}]'
)


class DeclarationError(ValueError):
    """The declaration is missing or invalid; the message is one line naming the key and the problem."""


@dataclass(frozen=True)
class LegalEntity:
    """One legal entity of the firm; `realm_id` is None for an entity with no ERP company (yet)."""

    code: str
    name: str
    country: str | None
    currency: str
    realm_id: str | None


def _optional(value: Any, where: str) -> str | None:
    """A declared field as text (strings trimmed, an integer such as a TOML realm id as its digits);
    None when absent or empty."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise DeclarationError(f"{where} must be text, not {type(value).__name__} {value!r}")
    return str(value).strip()


def _required(value: Any, where: str) -> str:
    text = _optional(value, where)
    if text is None:
        raise DeclarationError(f"{where} is missing or empty")
    return text


def parse_legal_entities(value: Any) -> tuple[LegalEntity, ...]:
    """The legal entities of a declaration (a list, or its JSON as text), checked; DeclarationError if not.

    Each entity needs `code`, `name` and `currency` (three capital letters, ISO 4217); `country` and
    `realm_id` are optional. Codes and realm ids are unique; unknown fields are refused (a typo such
    as `realm` would otherwise lose the realm silently).
    """
    if value is None:
        raise DeclarationError(
            f"{KEY} is not set: declare the firm's legal entities in .dlt/config.toml ([firm] "
            f"legal_entities = [...]) or in the environment, e.g. {ENV}='{EXAMPLE}' (see README)"
        )
    if isinstance(value, str):
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError as err:
            raise DeclarationError(f"{KEY} is not valid JSON ({err}): expected e.g. {EXAMPLE}") from None
    if not isinstance(value, list) or not value:
        raise DeclarationError(
            f"{KEY} must be a non-empty list of legal entities, e.g. {EXAMPLE}; got {value!r}"
        )
    entities = []
    for position, item in enumerate(value):
        where = f"{KEY}[{position}]"
        if not isinstance(item, dict):
            raise DeclarationError(f"{where} must be an object with {', '.join(FIELDS)}; got {item!r}")
        unknown = sorted(set(item) - set(FIELDS))
        if unknown:
            raise DeclarationError(
                f"{where} has unknown field(s) {unknown}; the fields are {', '.join(FIELDS)}"
            )
        code = _required(item.get("code"), f"{where}.code")
        name = _required(item.get("name"), f"{where}.name")
        currency = _required(item.get("currency"), f"{where}.currency")
        if not CURRENCY.fullmatch(currency):
            raise DeclarationError(
                f"{where}.currency {currency!r} is not a currency code: "
                "three capital letters (ISO 4217, e.g. USD)"
            )
        country = _optional(item.get("country"), f"{where}.country")
        realm_id = _optional(item.get("realm_id"), f"{where}.realm_id")
        entities.append(LegalEntity(code, name, country, currency, realm_id))
    for unique in ("code", "realm_id"):
        seen: set[str] = set()
        for position, entity in enumerate(entities):
            field_value = getattr(entity, unique)
            if field_value is None:
                continue
            if field_value in seen:
                raise DeclarationError(
                    f"{KEY}[{position}].{unique} {field_value!r} is declared twice; "
                    "each legal entity needs its own"
                )
            seen.add(field_value)
    return tuple(entities)


def declared_legal_entities() -> tuple[LegalEntity, ...]:
    """The firm's legal entities from the configuration (dlt config or environment), checked."""
    return parse_legal_entities(dlt.config.get(KEY))


def is_declared() -> bool:
    """Whether the configuration has a declaration at all (valid or not)."""
    return dlt.config.get(KEY) is not None


def declared_realms(entities: tuple[LegalEntity, ...]) -> list[str]:
    """The ERP realm ids of the declared entities, in declaration order (entities without one skipped)."""
    return [entity.realm_id for entity in entities if entity.realm_id is not None]
