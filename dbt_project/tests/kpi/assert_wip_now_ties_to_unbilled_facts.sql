-- WIP as of the warehouse's now equals, in each transaction currency, the approved billable T&M
-- time not invoiced (at its bill amount) + approved billable expenses not invoiced + completed
-- milestones not invoiced, each dated on or before now. Returns the currencies that differ.
with as_of as (
    select * from {{ ref('int_as_of') }}
),

facts as (
    select
        currency_code,
        bill_amount as amount
    from {{ ref('fct_time_entries') }}
    cross join as_of
    where is_billable and is_approved and not is_invoiced
        and coalesce(billing_method, 'unknown') in ('time_and_materials', 'unknown')
        and not coalesce(is_internal_project, false)
        and spent_date <= as_of.as_of_date
    union all
    select
        currency_code,
        amount
    from {{ ref('fct_expenses') }}
    cross join as_of
    where is_billable and is_approved and not is_invoiced and spent_date <= as_of.as_of_date
    union all
    select
        currency_code,
        amount
    from {{ ref('fct_milestones') }}
    cross join as_of
    where is_completed and not is_invoiced
        and coalesce(completed_date, cast(updated_at as date)) <= as_of.as_of_date
),

facts_by_currency as (
    select
        currency_code,
        sum(coalesce(amount, 0)) as amount
    from facts
    group by currency_code
),

mart_by_currency as (
    select
        currency_code,
        sum(wip_amount) as amount
    from {{ ref('rpt_wip') }}
    where is_warehouse_now
    group by currency_code
)

select
    coalesce(facts_by_currency.currency_code, mart_by_currency.currency_code) as currency_code,
    facts_by_currency.amount as facts_amount,
    mart_by_currency.amount as wip_amount
from facts_by_currency
full outer join mart_by_currency
    -- a null currency matches a null currency (PostgreSQL's full join needs an equality)
    on coalesce(facts_by_currency.currency_code, '?') = coalesce(mart_by_currency.currency_code, '?')
where coalesce(facts_by_currency.amount, 0) != coalesce(mart_by_currency.amount, 0)
