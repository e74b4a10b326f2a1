{#- Work in progress (unbilled) and at-risk time per as-of date, project, aging bucket and
    transaction currency, for the as-of dates of int_wip_as_of_dates (month ends since the
    first time entry, the last 90 days, the warehouse's now). The rule is macro wip_as_of,
    over int_wip_items; the same macro gives WIP as of any other date, and the post-hook
    publishes it in the warehouse as the DuckDB table macro marts.wip_as_of(date). -#}
{{ config(post_hook="{{ create_wip_as_of_function() }}") }}
with as_of_dates as (
    select * from {{ ref('int_wip_as_of_dates') }}
),

wip as (
    {{ wip_as_of(ref('int_wip_as_of_dates')) | indent(4) }}
),

final as (
    select
        wip.as_of_date,
        as_of_dates.is_month_end,
        as_of_dates.is_recent_day,
        as_of_dates.is_warehouse_now,
        wip.project_id,
        wip.client_id,
        wip.contract_id,
        wip.legal_entity,
        wip.practice,
        wip.billing_method,
        wip.aging_bucket,
        wip.aging_bucket_order,
        wip.currency_code,
        wip.wip_hours,
        wip.unpriced_wip_hours,
        wip.wip_time_amount,
        wip.wip_expense_amount,
        wip.wip_milestone_amount,
        wip.wip_amount,
        wip.wip_amount_reporting,
        wip.wip_time_amount_reporting,
        wip.wip_expense_amount_reporting,
        wip.wip_milestone_amount_reporting,
        wip.wip_item_count,
        wip.at_risk_hours,
        wip.at_risk_amount,
        wip.at_risk_amount_reporting,
        wip.at_risk_entry_count
    from wip
    inner join as_of_dates on wip.as_of_date = as_of_dates.as_of_date
)

{#- names beside the ids (macro with_names) -#}
{{ with_names('final') }}
