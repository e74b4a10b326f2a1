{#- Days sales outstanding per legal entity and month, in the reporting currency:
    DSO = open receivables at the month's end / invoiced revenue of the 90 days ending that day
    x 90. Open receivables are rpt_ar_aging's (every bucket, every currency); invoiced revenue
    is the total of ERP invoices (fct_invoices.total_amount_reporting) dated in the 90 days
    ending on the snapshot date (both days included: D-89 .. D). For the month in progress the
    snapshot is the warehouse's now. A firm-wide DSO is sum(open) / sum(invoiced) x 90. -#}
with ar_aging as (
    select * from {{ ref('rpt_ar_aging') }}
),

invoices as (
    select * from {{ ref('fct_invoices') }}
),

open_receivables as (
    select
        legal_entity,
        month_start_date,
        as_of_date,
        is_month_end,
        sum(open_amount_reporting) as open_receivables_reporting,
        sum(case when aging_bucket != 'current' then open_amount_reporting else 0 end)
            as overdue_receivables_reporting,
        sum(open_invoice_count) as open_invoice_count
    from ar_aging
    group by legal_entity, month_start_date, as_of_date, is_month_end
),

invoiced_90_days as (
    select
        open_receivables.legal_entity,
        open_receivables.month_start_date,
        sum(invoices.total_amount_reporting) as invoiced_90_days_reporting,
        count(invoices.erp_invoice_key) as invoice_count_90_days
    from open_receivables
    left join invoices
        on open_receivables.legal_entity = invoices.legal_entity
        and invoices.invoice_date <= open_receivables.as_of_date
        and invoices.invoice_date > {{ dbt.dateadd('day', -90, 'open_receivables.as_of_date') }}
    group by open_receivables.legal_entity, open_receivables.month_start_date
),

final as (
    select
        open_receivables.legal_entity || ':'
        || cast(open_receivables.month_start_date as {{ dbt.type_string() }}) as dso_key,
        open_receivables.legal_entity,
        open_receivables.month_start_date,
        open_receivables.as_of_date,
        open_receivables.is_month_end,
        cast(open_receivables.open_receivables_reporting as decimal(24, 8)) as open_receivables_reporting,
        cast(open_receivables.overdue_receivables_reporting as decimal(24, 8))
            as overdue_receivables_reporting,
        open_receivables.open_invoice_count,
        cast(coalesce(invoiced_90_days.invoiced_90_days_reporting, 0) as decimal(24, 8))
            as invoiced_90_days_reporting,
        invoiced_90_days.invoice_count_90_days,
        case
            when invoiced_90_days.invoiced_90_days_reporting > 0
                then {{ double_to_decimal(
                        divide(
                            'open_receivables.open_receivables_reporting',
                            'invoiced_90_days.invoiced_90_days_reporting'
                        ) ~ ' * 90',
                        12, 2
                    ) }}
        end as dso_days
    from open_receivables
    left join invoiced_90_days
        on open_receivables.legal_entity = invoiced_90_days.legal_entity
        and open_receivables.month_start_date = invoiced_90_days.month_start_date
)

select * from final
