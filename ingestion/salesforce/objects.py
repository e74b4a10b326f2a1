"""Salesforce objects as they land: the SOQL field list, declared types, keys, cursor and contracts.

Each object's SOQL `SELECT` lists exactly the fields of its schema (SOQL has no `SELECT *`), so a
field added here is a field queried. Tables are the objects' names in lower case (`account`,
`opportunity`, `contract`, `user`), as in dlt's verified Salesforce source; columns are dlt's
snake_case of the API names (`ContractValue__c` → `contract_value__c`).
"""

from __future__ import annotations

import polars as pl

from ingestion.records import NUMBER, STRING, Schema, TableSpec

S, F, B = pl.String, pl.Float64, pl.Boolean
API_VERSION = "v60.0"
BATCH_SIZE = 2000  # records per query batch (Sforce-Query-Options batchSize: 200..2000)
CURSOR = "SystemModstamp"
STAMPS: Schema = {"CreatedDate": S, "LastModifiedDate": S, CURSOR: S}


def sobject(
    obj: str, fields: Schema, critical: dict[str, str], finance_critical: bool = False
) -> tuple[str, TableSpec]:
    """(API object name, its TableSpec): table `obj.lower()`, key `Id`, cursor `SystemModstamp`."""
    spec = TableSpec(
        obj.lower(),
        ("Id",),
        {"Id": S, **fields, **STAMPS},
        cursor=CURSOR,
        critical={"Id": STRING, CURSOR: STRING, **critical},
        finance_critical=finance_critical,
    )
    return obj, spec


# API object name → how it lands; in load order (owners and accounts before what refers to them).
OBJECTS = dict(
    (
        sobject(
            "User",
            {"Username": S, "Email": S, "FirstName": S, "LastName": S, "Name": S, "IsActive": B, "Title": S},
            {},
        ),
        sobject(
            "Account",
            {
                "Name": S,
                "Type": S,
                "Industry": S,
                "BillingCountry": S,
                "CurrencyIsoCode": S,
                "OwnerId": S,
                "IsDeleted": B,
            },
            {},
        ),
        sobject(
            "Opportunity",
            {
                "Name": S,
                "AccountId": S,
                "StageName": S,
                "CloseDate": S,
                "Amount": F,
                "CurrencyIsoCode": S,
                "IsClosed": B,
                "IsWon": B,
                "Type": S,
                "Probability": F,
                "OwnerId": S,
                "Practice__c": S,
                "BillingMethod__c": S,
            },
            {"Amount": NUMBER, "CloseDate": STRING, "AccountId": STRING},
            finance_critical=True,
        ),
        sobject(
            "Contract",
            {
                "ContractNumber": S,
                "AccountId": S,
                "StartDate": S,
                "EndDate": S,
                "Status": S,
                "CurrencyIsoCode": S,
                "OpportunityId__c": S,
                "ContractValue__c": F,
                "BillingMethod__c": S,
                "LegalEntity__c": S,
                "MonthlyFee__c": F,
            },
            {
                "ContractValue__c": NUMBER,
                "MonthlyFee__c": NUMBER,
                "StartDate": STRING,
                "EndDate": STRING,
                "AccountId": STRING,
            },
            finance_critical=True,
        ),
    )
)
