{#- The forecast's window, one row, from the warehouse's now (int_as_of): everything after the
    as-of date is future. Daily forecasts run from the day after it to the end of the as-of
    month plus var forecast_months - 1 further months (12: the as-of month and the 11 after);
    weekly ones cover var forecast_weeks full ISO weeks (Monday start) from the first Monday
    after the as-of date, so the week in progress, partly actual already, is never a forecast. -#}
with as_of as (
    select * from {{ ref('int_as_of') }}
),

-- ISO weeks (Monday start) and months as dim_dates has them, from the engines' date_trunc
anchored as (
    select
        as_of_at,
        as_of_date,
        cast({{ dbt.date_trunc('week', 'as_of_date') }} as date) as as_of_week_start_date,
        cast({{ dbt.date_trunc('month', 'as_of_date') }} as date) as as_of_month_start_date
    from as_of
),

final as (
    select
        as_of_at,
        as_of_date,
        as_of_month_start_date,
        cast({{ dbt.dateadd('day', 1, 'as_of_date') }} as date) as first_forecast_date,
        cast({{ dbt.dateadd('day', 7, 'as_of_week_start_date') }} as date) as first_forecast_week_start_date,
        cast({{ dbt.dateadd('day', 7 * var('forecast_weeks', 12), 'as_of_week_start_date') }} as date)
            as last_forecast_week_start_date,
        cast(
            {{ dbt.dateadd(
                'day', -1, dbt.dateadd('month', var('forecast_months', 12), 'as_of_month_start_date')
            ) }}
            as date
        ) as horizon_end_date
    from anchored
)

select * from final
