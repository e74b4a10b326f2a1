{#- The as-of dates rpt_wip materialises: every month end from the month of the first time
    entry up to the warehouse's now, every day of the 90 days up to and including now's date,
    and now's date itself (intermediate.int_as_of). Any other date: macro wip_as_of (see
    docs/warehouse.md, "WIP as of any date"). -#}
with as_of as (
    select * from {{ ref('int_as_of') }}
),

dates as (
    select * from {{ ref('int_dates') }}
),

first_entry as (
    select min(spent_date) as first_day from {{ ref('int_time_entries') }}
),

candidates as (
    select
        dates.date_day as as_of_date,
        dates.date_day = dates.month_end_date as is_month_end,
        dates.date_day > {{ dbt.dateadd('day', -90, 'as_of.as_of_date') }} as is_recent_day,
        dates.date_day = as_of.as_of_date as is_warehouse_now
    from dates
    cross join as_of
    cross join first_entry
    where dates.date_day <= as_of.as_of_date
        and dates.date_day >= first_entry.first_day
),

final as (
    select * from candidates
    where is_month_end or is_recent_day or is_warehouse_now
)

select * from final
