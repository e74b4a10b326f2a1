{#- Every calendar day for every legal entity: is it a working day there (a weekday that is
    not one of the entity's public holidays, from the latest HR holiday list), and a running
    working-day number so "the fifth working day after D" is a lookup, not a loop. -#}
with dates as (
    select * from {{ ref('int_dates') }}
),

legal_entities as (
    select * from {{ ref('stg_firm__legal_entities') }}
),

holidays as (
    select * from {{ ref('stg_hr__holidays') }}
),

latest_holiday_list as (
    select
        legal_entity,
        max(snapshot_date) as snapshot_date
    from holidays
    group by legal_entity
),

current_holidays as (
    select distinct
        holidays.legal_entity,
        holidays.holiday_date,
        holidays.holiday_name
    from holidays
    inner join latest_holiday_list
        on holidays.legal_entity = latest_holiday_list.legal_entity
        and holidays.snapshot_date = latest_holiday_list.snapshot_date
),

entity_days as (
    select
        legal_entities.legal_entity,
        dates.date_day,
        dates.is_weekend,
        current_holidays.holiday_name,
        current_holidays.holiday_date is not null as is_holiday
    from legal_entities
    cross join dates
    left join current_holidays
        on legal_entities.legal_entity = current_holidays.legal_entity
        and dates.date_day = current_holidays.holiday_date
),

final as (
    select
        legal_entity,
        date_day,
        is_weekend,
        is_holiday,
        holiday_name,
        not is_weekend and not is_holiday as is_working_day,
        sum(case when not is_weekend and not is_holiday then 1 else 0 end) over (
            partition by legal_entity order by date_day rows between unbounded preceding and current row
        ) as working_day_number
    from entity_days
)

select * from final
