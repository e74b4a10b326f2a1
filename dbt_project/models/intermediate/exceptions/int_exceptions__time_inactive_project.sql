with entries as (
    select * from {{ ref('int_time_entries_resolved') }} where not is_deleted
),

final as (
    select
        {{ time_entry_exception(
            'TIME_INACTIVE_PROJECT',
            "'worked ' || cast(entries.spent_date as varchar) || ' on ' || entries.project_code || ', '"
                ~ " || lower(entries.project_status) || ' since ' || cast(entries.project_status_changed_date as varchar)",
            "'{\"status\": \"' || entries.project_status || '\", \"status_changed_on\": \"' || "
                ~ "cast(entries.project_status_changed_date as varchar) || '\"}'"
        ) }}
    from entries
    where
        entries.is_known_project
        and not entries.is_internal_project
        and entries.project_status in ('On Hold', 'Completed', 'Cancelled')
        and entries.spent_date >= entries.project_status_changed_date
)

select * from final
