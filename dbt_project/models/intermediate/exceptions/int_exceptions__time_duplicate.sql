{#- The second and later copies (by id) of entries with the same person, project, day, hours
    and notes. -#}
with entries as (
    select * from {{ ref('int_time_entries_resolved') }} where not is_deleted
),

ranked as (
    select
        *,
        row_number() over (
            partition by time_user_id, time_project_id, spent_date, hours, notes order by time_entry_id
        ) as copy_number,
        min(time_entry_id) over (
            partition by time_user_id, time_project_id, spent_date, hours, notes
        ) as original_time_entry_id
    from entries
),

final as (
    select
        {{ time_entry_exception(
            'TIME_DUPLICATE',
            "'duplicate of time entry ' || ranked.original_time_entry_id || ' (same person, project, day, '"
                ~ " || ranked.hours || ' h and notes)'",
            "'{\"original_time_entry_id\": ' || ranked.original_time_entry_id || '}'",
            alias='ranked'
        ) }}
    from ranked
    where ranked.copy_number > 1
)

select * from final
