{#- Harvest users HR does not know: no HR employee with their e-mail and no manual mapping in
    identity_overrides. Their time has no grade, cost or rate; every entry of theirs is held back
    from billing (int_time_entry_blocking_exceptions), reported once here per user. -#}
with users as (
    select * from {{ ref('stg_time__users') }}
),

employee_ids as (
    select * from {{ ref('int_employee_source_ids') }}
    where source_system = 'time'
),

time_entries as (
    select * from {{ ref('stg_time__time_entries') }}
),

as_of as (
    select * from {{ ref('int_as_of') }}
),

their_time as (
    select
        time_user_id,
        min(spent_date) as first_spent_date,
        count(*) as entry_count,
        sum(hours) as hours
    from time_entries
    where not is_deleted
    group by time_user_id
),

unknown as (
    select
        users.*,
        employee_ids.employee_id,
        their_time.first_spent_date,
        coalesce(their_time.entry_count, 0) as entry_count,
        coalesce(their_time.hours, 0) as hours
    from users
    inner join employee_ids on cast(users.time_user_id as {{ dbt.type_string() }}) = employee_ids.source_id
    left join their_time on users.time_user_id = their_time.time_user_id
    cross join as_of
    where
        employee_ids.match_method = 'unmatched'
        and users.created_at <= as_of.as_of_at
),

final as (
    select
        {{ exception_columns(
            'TIME_UNKNOWN_EMPLOYEE', 'time_user', 'unknown.time_user_id', 'time',
            "'harvest user ' || unknown.time_user_id || ' (' || coalesce(unknown.email, 'no e-mail') || ')'",
            "'time-tool user ' || coalesce(unknown.email, cast(unknown.time_user_id as " ~ dbt.type_string() ~ "))"
                ~ " || ' matches no HR employee by e-mail; ' || unknown.entry_count || ' entries, '"
                ~ " || " ~ display_number('unknown.hours') ~ " || ' h held back'",
            exception_details([
                ['email', 'unknown.email'],
                ['name', "unknown.first_name || ' ' || unknown.last_name"],
                ['entry_count', 'unknown.entry_count'],
                ['hours', 'unknown.hours'],
            ]),
            'coalesce(unknown.first_spent_date, cast(unknown.created_at as date))',
            employee_id='unknown.employee_id'
        ) }}
    from unknown
)

select * from final
