{#- Hours not above zero, or a person's day adding up to more than 24 hours. For a day over 24
    hours every entry of that person's day is flagged: which one is wrong is for the person to
    say. Deleted entries count for nothing. -#}
with entries as (
    select * from {{ ref('int_time_entries_resolved') }}
),

as_of as (
    select * from {{ ref('int_as_of') }}
),

alive as (
    select entries.*
    from entries
    cross join as_of
    where not entries.is_deleted and entries.created_at <= as_of.as_of_at
),

-- a grouped total joined back, not a window sum: DuckDB drops rows when a cast window
-- aggregate meets an OR filter (2 of 10 flagged entries came out when this was a window)
person_days as (
    select
        time_user_id,
        spent_date,
        sum(hours) as day_hours,
        count(*) as day_entry_count
    from alive
    group by time_user_id, spent_date
),

with_day_totals as (
    select
        alive.*,
        person_days.day_hours,
        person_days.day_entry_count
    from alive
    inner join person_days
        on alive.time_user_id = person_days.time_user_id
        and alive.spent_date = person_days.spent_date
),

invalid as (
    select * from with_day_totals
    where hours <= 0 or day_hours > 24
),

final as (
    select
        {{ time_entry_exception(
            'TIME_INVALID_HOURS',
            "case when invalid.hours <= 0 then 'hours ' || " ~ display_number('invalid.hours') ~ " || ' are not above zero'"
                ~ " else 'harvest user ' || invalid.time_user_id || '" ~ dbt.escape_single_quotes("'") ~ "s ' || invalid.day_entry_count"
                ~ " || ' entries of ' || cast(invalid.spent_date as " ~ dbt.type_string() ~ ") || ' add up to ' || " ~ display_number('invalid.day_hours')
                ~ " || ' h, more than 24' end",
            exception_details([
                ['hours', 'invalid.hours'],
                ['day_hours', 'invalid.day_hours'],
                ['day_entry_count', 'invalid.day_entry_count'],
            ]),
            alias='invalid'
        ) }}
    from invalid
)

select * from final
