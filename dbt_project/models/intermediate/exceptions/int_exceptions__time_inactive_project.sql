{#- Time on a client project on or after the day it went On Hold, Completed or Cancelled
    (PSA status and status_changed_on): work nobody should be doing, or a status set too early. -#}
with entries as (
    select * from {{ ref('int_time_entries_resolved') }}
),

as_of as (
    select * from {{ ref('int_as_of') }}
),

inactive as (
    select entries.*
    from entries
    cross join as_of
    where
        not entries.is_deleted
        and entries.created_at <= as_of.as_of_at
        and entries.is_known_project
        and not entries.is_internal_project
        and entries.project_status in ('On Hold', 'Completed', 'Cancelled')
        and entries.spent_date >= entries.project_status_changed_date
),

final as (
    select
        {{ time_entry_exception(
            'TIME_INACTIVE_PROJECT',
            "'worked ' || cast(inactive.spent_date as " ~ dbt.type_string() ~ ") || ' on ' || inactive.project_code || ', which is '"
                ~ " || lower(inactive.project_status) || ' since ' || cast(inactive.project_status_changed_date as " ~ dbt.type_string() ~ ")",
            exception_details([
                ['project_status', 'inactive.project_status'],
                ['status_changed_on', 'inactive.project_status_changed_date'],
                ['spent_date', 'inactive.spent_date'],
                ['hours', 'inactive.hours'],
            ]),
            alias='inactive'
        ) }}
    from inactive
)

select * from final
