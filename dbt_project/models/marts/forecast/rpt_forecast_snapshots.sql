{#- Every build's forecast, kept: one row per build as-of date, forecast month and practice,
    with the monthly revenue forecast (rpt_revenue_forecast_monthly) and the month's forecast
    capacity and assigned hours (fct_forecast_capacity_daily, fct_forecast_assignment_days), so
    rpt_forecast_accuracy can set what was forecast for a month weeks before against what
    happened.

    A forecast cannot be rebuilt later (the assignments, pipeline and bookings it was made from
    change), so, like exception_history, this model is incremental with full_refresh: false:
    `dbt build --full-refresh` (make transform FULL_REFRESH=1) merges into it as usual and never
    drops older snapshots. Keyed by the as-of date (delete+insert): a second build with the same
    as-of date replaces that date's snapshot, every other date's stays. -#}
{%- set revenue_amounts = [
    'recognized_to_date_amount_reporting',
    'contracted_forecast_amount_reporting',
    'pipeline_forecast_amount_reporting',
] -%}
{{
    config(
        materialized='incremental',
        unique_key='snapshot_as_of_date',
        incremental_strategy=('insert_overwrite' if target.type == 'spark' else 'delete+insert'),
        on_schema_change='append_new_columns',
        full_refresh=false,
    )
}}
with horizon as (
    select * from {{ ref('int_forecast_horizon') }}
),

revenue as (
    select * from {{ ref('rpt_revenue_forecast_monthly') }}
),

capacity as (
    select * from {{ ref('fct_forecast_capacity_daily') }}
),

assignment_days as (
    select * from {{ ref('fct_forecast_assignment_days') }}
    where is_in_horizon
),

revenue_months as (
    select
        revenue.practice,
        revenue.month_start_date,
        -- each amount is unknown (null) when any part of it is (no exchange rate)
        {{ known_sum('case when revenue.is_pipeline then 0 else revenue.forecast_amount_reporting end') }}
            as contracted_forecast_amount_reporting,
        {{ known_sum('case when revenue.is_pipeline then revenue.forecast_amount_reporting else 0 end') }}
            as pipeline_forecast_amount_reporting,
        {{ known_sum('revenue.recognized_amount_reporting') }} as recognized_to_date_amount_reporting
    from revenue
    cross join horizon
    where revenue.month_start_date >= horizon.as_of_month_start_date
    group by revenue.practice, revenue.month_start_date
),

capacity_months as (
    select
        practice,
        month_start_date,
        sum(capacity_hours) as capacity_hours
    from capacity
    group by practice, month_start_date
),

assigned_months as (
    select
        employee_practice as practice,
        month_start_date,
        sum(case when billing_method = 'internal' then 0 else planned_hours end) as billable_assigned_hours
    from assignment_days
    where is_known_employee
    group by employee_practice, month_start_date
),

spine as (
    select
        practice,
        month_start_date
    from revenue_months
    union
    select
        practice,
        month_start_date
    from capacity_months
    union
    select
        practice,
        month_start_date
    from assigned_months
),

final as (
    select
        cast(horizon.as_of_date as {{ dbt.type_string() }})
        || ':' || cast(spine.month_start_date as {{ dbt.type_string() }})
        || ':' || coalesce(spine.practice, '(none)') as snapshot_row_id,
        horizon.as_of_date as snapshot_as_of_date,
        horizon.as_of_at as snapshot_as_of_at,
        '{{ invocation_id }}' as snapshot_invocation_id,
        spine.month_start_date,
        spine.practice,
        {#- a practice-month with no revenue row has 0; one whose amount is unknown keeps null #}
        {%- for amount in revenue_amounts %}
        cast(
            case
                when revenue_months.month_start_date is null then 0
                else revenue_months.{{ amount }}
            end as decimal(24, 8)
        ) as {{ amount }},
        {%- endfor %}
        cast(coalesce(capacity_months.capacity_hours, 0) as decimal(14, 4)) as capacity_hours,
        cast(coalesce(assigned_months.billable_assigned_hours, 0) as decimal(14, 4))
            as billable_assigned_hours
    from spine
    cross join horizon
    left join revenue_months
        on spine.practice is not distinct from revenue_months.practice
        and spine.month_start_date = revenue_months.month_start_date
    left join capacity_months
        on spine.practice is not distinct from capacity_months.practice
        and spine.month_start_date = capacity_months.month_start_date
    left join assigned_months
        on spine.practice is not distinct from assigned_months.practice
        and spine.month_start_date = assigned_months.month_start_date
)

select * from final
