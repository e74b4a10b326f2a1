{#- The calendar, with fiscal attributes (fiscal year named by the calendar year it ends in;
    start month from var fiscal_year_start_month). -#}
{%- set fiscal_start = var('fiscal_year_start_month') | int -%}
with days as (
    {{ dbt.date_spine(
        'day', "cast('" ~ var('calendar_start') ~ "' as date)", "cast('" ~ var('calendar_end') ~ "' as date)"
    ) }}
),

typed as (
    select cast(date_day as date) as date_day from days
),

final as (
    select
        date_day,
        cast({{ dbt.date_trunc('week', 'date_day') }} as date) as week_start_date,
        cast({{ dbt.date_trunc('month', 'date_day') }} as date) as month_start_date,
        cast({{ dbt.date_trunc('quarter', 'date_day') }} as date) as quarter_start_date,
        -- extract() is a bigint on DuckDB, a numeric on PostgreSQL: bigint on both
        cast(extract(year from date_day) as bigint) as calendar_year,
        cast(extract(quarter from date_day) as bigint) as calendar_quarter,
        cast(extract(month from date_day) as bigint) as calendar_month,
        cast({{ iso_day_of_week('date_day') }} as bigint) as iso_day_of_week,
        {{ iso_day_of_week('date_day') }} in (6, 7) as is_weekend,
        cast({{ dbt.last_day('date_day', 'month') }} as date) as month_end_date,
        cast(
            extract(year from date_day)
            + case
                when {{ fiscal_start }} > 1 and extract(month from date_day) >= {{ fiscal_start }}
                    then 1
                else 0
            end
            as bigint
        ) as fiscal_year,
        cast(((extract(month from date_day) - {{ fiscal_start }} + 12) % 12) + 1 as bigint) as fiscal_month,
        cast(floor(((extract(month from date_day) - {{ fiscal_start }} + 12) % 12) / 3) + 1 as integer)
            as fiscal_quarter
    from typed
)

select * from final
