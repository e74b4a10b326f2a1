{#- Hours not above zero, or a person's day adding up to more than 24 hours (every entry of that
    day is flagged: which one is wrong is for the person to say). -#}
with entries as (
    select * from {{ ref('int_time_entries_resolved') }} where not is_deleted
),

-- a grouped total joined back, not a window sum: DuckDB 2.0 drops rows when a cast window
-- aggregate meets an OR filter (found here: 2 of 10 flagged entries came out)
person_days as (
    select time_user_id, spent_date, sum(hours) as day_hours
    from entries
    group by time_user_id, spent_date
),

day_totals as (
    select entries.*, person_days.day_hours
    from entries
    inner join person_days
        on entries.time_user_id = person_days.time_user_id and entries.spent_date = person_days.spent_date
),

final as (
    select
        {{ time_entry_exception(
            'TIME_INVALID_HOURS',
            "case when day_totals.hours <= 0 then 'hours ' || day_totals.hours || ' are not above zero'"
                ~ " else 'the day ' || cast(day_totals.spent_date as varchar) || ' adds up to ' || day_totals.day_hours || ' h' end",
            "'{\"hours\": ' || day_totals.hours || ', \"day_hours\": ' || day_totals.day_hours || '}'",
            alias='day_totals'
        ) }}
    from day_totals
    where day_totals.hours <= 0 or day_totals.day_hours > 24
)

select * from final
