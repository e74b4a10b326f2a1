{#- Open receivables per legal entity, currency and aging bucket at every month end up to the
    warehouse's now (the month in progress is shown as of now). An invoice is open at a date D
    for its total less the payment lines applied to it dated on or before D, when it was issued
    on or before D. Aged by due date: current (not yet due), 1-30, 31-60, 61-90, 90+ days past
    due at D. Every bucket appears for every entity, currency it invoices in and month, with 0
    when nothing is open, so charts and sums never miss a bucket. Reporting amounts use the
    invoice date's rate, as fct_invoices does, so AR at now equals the invoices' balances in
    both currencies. -#}
with invoices as (
    select * from {{ ref('fct_invoices') }}
),

payments as (
    select * from {{ ref('fct_payments') }}
    where not is_unapplied and erp_invoice_key is not null
),

dates as (
    select * from {{ ref('dim_dates') }}
),

as_of as (
    select * from {{ ref('int_as_of') }}
),

buckets as (
    select
        'current' as aging_bucket,
        1 as aging_bucket_order
    union all
    select
        '1-30',
        2
    union all
    select
        '31-60',
        3
    union all
    select
        '61-90',
        4
    union all
    select
        '90+',
        5
),

snapshots as (
    select
        dates.month_start_date,
        dates.month_end_date,
        least(dates.month_end_date, as_of.as_of_date) as as_of_date
    from dates
    cross join as_of
    where
        dates.date_day = dates.month_start_date
        and dates.month_start_date
        >= (select cast({{ dbt.date_trunc('month', 'min(invoice_date)') }} as date) from invoices)
        and dates.month_start_date <= as_of.as_of_date
),

open_at_snapshot as (
    select
        snapshots.month_start_date,
        snapshots.as_of_date,
        invoices.erp_invoice_key,
        invoices.legal_entity,
        invoices.currency_code,
        invoices.fx_rate_to_reporting,
        invoices.due_date,
        invoices.total_amount - coalesce(sum(payments.amount), 0) as open_amount
    from snapshots
    inner join invoices on invoices.invoice_date <= snapshots.as_of_date
    left join payments
        on invoices.erp_invoice_key = payments.erp_invoice_key
        and payments.payment_date <= snapshots.as_of_date
    group by
        snapshots.month_start_date,
        snapshots.as_of_date,
        invoices.erp_invoice_key,
        invoices.legal_entity,
        invoices.currency_code,
        invoices.fx_rate_to_reporting,
        invoices.due_date,
        invoices.total_amount
),

aged as (
    select
        *,
        case
            when {{ dbt.datediff('due_date', 'as_of_date', 'day') }} <= 0 then 'current'
            when {{ dbt.datediff('due_date', 'as_of_date', 'day') }} <= 30 then '1-30'
            when {{ dbt.datediff('due_date', 'as_of_date', 'day') }} <= 60 then '31-60'
            when {{ dbt.datediff('due_date', 'as_of_date', 'day') }} <= 90 then '61-90'
            else '90+'
        end as aging_bucket
    from open_at_snapshot
    where open_amount != 0
),

bucket_totals as (
    select
        legal_entity,
        currency_code,
        month_start_date,
        aging_bucket,
        count(*) as open_invoice_count,
        sum(open_amount) as open_amount,
        sum(open_amount * fx_rate_to_reporting) as open_amount_reporting
    from aged
    group by legal_entity, currency_code, month_start_date, aging_bucket
),

entity_currencies as (
    select distinct
        legal_entity,
        currency_code
    from invoices
),

grid as (
    select
        entity_currencies.legal_entity,
        entity_currencies.currency_code,
        snapshots.month_start_date,
        snapshots.month_end_date,
        snapshots.as_of_date,
        buckets.aging_bucket,
        buckets.aging_bucket_order
    from entity_currencies
    cross join snapshots
    cross join buckets
),

final as (
    select
        grid.legal_entity || ':' || grid.currency_code
        || ':' || cast(grid.month_start_date as {{ dbt.type_string() }})
        || ':' || grid.aging_bucket as ar_aging_key,
        grid.legal_entity,
        grid.currency_code,
        grid.month_start_date,
        grid.as_of_date,
        grid.as_of_date = grid.month_end_date as is_month_end,
        grid.aging_bucket,
        grid.aging_bucket_order,
        coalesce(bucket_totals.open_invoice_count, 0) as open_invoice_count,
        cast(coalesce(bucket_totals.open_amount, 0) as decimal(18, 2)) as open_amount,
        cast(coalesce(bucket_totals.open_amount_reporting, 0) as decimal(24, 8)) as open_amount_reporting
    from grid
    left join bucket_totals
        on grid.legal_entity = bucket_totals.legal_entity
        and grid.currency_code = bucket_totals.currency_code
        and grid.month_start_date = bucket_totals.month_start_date
        and grid.aging_bucket = bucket_totals.aging_bucket
)

select * from final
