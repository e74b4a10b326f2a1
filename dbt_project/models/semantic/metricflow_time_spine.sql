{#- MetricFlow's time spine: one row per day over dim_dates' calendar (vars calendar_start ..
    calendar_end). MetricFlow joins to it for cumulative and offset metrics and to fill empty
    periods; week, month and quarter are derived from date_day by MetricFlow itself. -#}
with dates as (
    select * from {{ ref('dim_dates') }}
),

final as (
    select date_day
    from dates
)

select * from final
