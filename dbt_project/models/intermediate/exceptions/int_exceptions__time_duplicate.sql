{#- The same person, project, day, hours and notes recorded more than once: the first entry (by
    id) is the original, every later copy is an exception (deleted entries do not count). -#}
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

ranked as (
    select
        alive.*,
        row_number() over (
            partition by alive.time_user_id, alive.time_project_id, alive.spent_date, alive.hours, alive.notes
            order by alive.time_entry_id
        ) as copy_number,
        min(alive.time_entry_id) over (
            partition by alive.time_user_id, alive.time_project_id, alive.spent_date, alive.hours, alive.notes
        ) as original_time_entry_id
    from alive
),

copies as (
    select * from ranked
    where copy_number > 1
),

final as (
    select
        {{ time_entry_exception(
            'TIME_DUPLICATE',
            "'copy ' || copies.copy_number || ' of time entry ' || copies.original_time_entry_id"
                ~ " || ': same person, project, day (' || cast(copies.spent_date as " ~ dbt.type_string() ~ ") || '), '"
                ~ " || " ~ display_number('copies.hours') ~ " || ' h and notes'",
            exception_details([
                ['original_time_entry_id', 'copies.original_time_entry_id'],
                ['copy_number', 'copies.copy_number'],
                ['hours', 'copies.hours'],
                ['notes', 'copies.notes'],
            ]),
            alias='copies'
        ) }}
    from copies
)

select * from final
