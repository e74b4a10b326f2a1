-- The aging snapshot at the warehouse's now holds exactly the ERP's open balances: per legal
-- entity and currency, the open amount of the month in progress equals the sum of the invoices'
-- balances (fct_invoices.balance, as the ERP holds it) and, in the reporting currency,
-- of balance_reporting. A row here is an entity and currency that does not tie.
with aging_now as (
    select
        ar_aging.legal_entity,
        ar_aging.currency_code,
        sum(ar_aging.open_amount) as open_amount,
        sum(ar_aging.open_amount_reporting) as open_amount_reporting
    from {{ ref('rpt_ar_aging') }} as ar_aging
    cross join {{ ref('int_as_of') }} as as_of
    where ar_aging.as_of_date = as_of.as_of_date
    group by ar_aging.legal_entity, ar_aging.currency_code
),

balances as (
    select
        invoices.legal_entity,
        invoices.currency_code,
        sum(invoices.balance) as balance,
        sum(coalesce(invoices.balance_reporting, 0)) as balance_reporting
    from {{ ref('fct_invoices') }} as invoices
    cross join {{ ref('int_as_of') }} as as_of
    where invoices.invoice_date <= as_of.as_of_date
    group by invoices.legal_entity, invoices.currency_code
)

select
    coalesce(aging_now.legal_entity, balances.legal_entity) as legal_entity,
    coalesce(aging_now.currency_code, balances.currency_code) as currency_code,
    aging_now.open_amount,
    balances.balance
from aging_now
full outer join balances
    on aging_now.legal_entity = balances.legal_entity
    and aging_now.currency_code = balances.currency_code
where
    coalesce(aging_now.open_amount, 0) != coalesce(balances.balance, 0)
    or coalesce(aging_now.open_amount_reporting, 0) != coalesce(balances.balance_reporting, 0)
