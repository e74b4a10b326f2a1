{#- Time-tool users HR does not know (no matching e-mail, no manual mapping). Their time is held
    back from billing (int_time_entry_blocking_exceptions). -#}
with users as (
    select * from {{ ref('stg_time__users') }}
),

employee_ids as (
    select * from {{ ref('int_employee_source_ids') }} where source_system = 'time'
),

first_entries as (
    select time_user_id, min(spent_date) as first_spent_date, count(*) as entry_count, sum(hours) as hours
    from {{ ref('stg_time__time_entries') }}
    where not is_deleted
    group by time_user_id
),

final as (
    select
        {{ exception_columns(
            'TIME_UNKNOWN_EMPLOYEE', 'time_user', 'users.time_user_id', 'time',
            "'harvest user ' || users.time_user_id || ' (' || coalesce(users.email, 'no e-mail') || ')'",
            "'time-tool user ' || coalesce(users.email, cast(users.time_user_id as varchar))"
                ~ " || ' is not in HR; ' || coalesce(first_entries.entry_count, 0) || ' entries, '"
                ~ " || coalesce(first_entries.hours, 0) || ' h held back'",
            "'{\"email\": \"' || coalesce(users.email, '') || '\"}'",
            'coalesce(first_entries.first_spent_date, cast(users.created_at as date))',
            employee_id='employee_ids.employee_id'
        ) }}
    from users
    inner join employee_ids on cast(users.time_user_id as varchar) = employee_ids.source_id
    left join first_entries on users.time_user_id = first_entries.time_user_id
    where employee_ids.match_method = 'unmatched'
)

select * from final
