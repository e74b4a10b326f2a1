{#- Billable time not approved by the end (24:00 UTC) of the fifth working day after the day
    worked, in the calendar of the person's legal entity (the project's for an unknown person). -#}
with entries as (
    select * from {{ ref('int_time_entries_resolved') }} where not is_deleted
),

working_days as (
    select * from {{ ref('int_legal_entity_working_days') }}
),

as_of as (
    select * from {{ ref('int_as_of') }}
),

deadlines as (
    select
        entries.*,
        cast({{ dbt.dateadd('day', 1, 'deadline_day.date_day') }} as timestamp) as approval_due_at
    from entries
    inner join working_days as worked
        on coalesce(entries.employee_legal_entity, entries.legal_entity) = worked.legal_entity
        and entries.spent_date = worked.date_day
    inner join working_days as deadline_day
        on worked.legal_entity = deadline_day.legal_entity
        and deadline_day.working_day_number = worked.working_day_number + 5
        and deadline_day.is_working_day
),

final as (
    select
        {{ time_entry_exception(
            'TIME_UNAPPROVED_LATE',
            "'billable time of ' || cast(deadlines.spent_date as varchar) || ' still ' || deadlines.approval_status"
                ~ " || '; approval was due by ' || cast(deadlines.approval_due_at as varchar)",
            "'{\"approval_status\": \"' || deadlines.approval_status || '\", \"approval_due_at\": \"' || "
                ~ "cast(deadlines.approval_due_at as varchar) || '\"}'",
            alias='deadlines'
        ) }}
    from deadlines
    cross join as_of
    where
        deadlines.is_billable
        and deadlines.approval_status <> 'approved'
        and deadlines.approval_due_at <= as_of.as_of_at
)

select * from final
