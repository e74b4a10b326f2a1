with entries as (
    select * from {{ ref('int_time_entries_resolved') }} where not is_deleted
),

final as (
    select
        {{ time_entry_exception(
            'TIME_UNKNOWN_PROJECT',
            "'project code ' || coalesce(entries.project_code, '(none)') || ' matches no PSA project, even as '"
                ~ " || coalesce(entries.project_code_normalised, '(empty)')",
            "'{\"project_code\": \"' || coalesce(entries.project_code, '') || '\", \"hours\": ' || entries.hours || '}'"
        ) }}
    from entries
    where not entries.is_known_project
)

select * from final
