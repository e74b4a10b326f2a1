{#- Every person record of every system and the HR employee it is: time-tool users by e-mail,
    ERP employees by employee number (the HR id) or e-mail, or a manual override. A time-tool
    user HR does not know stands alone (TIME_UNKNOWN_EMPLOYEE). -#}
with hr_snapshots as (
    select
        employee_id,
        email,
        row_number() over (partition by employee_id order by snapshot_date desc) as recency
    from {{ ref('stg_hr__employees') }}
),

hr_people as (
    select
        employee_id,
        email
    from hr_snapshots
    where recency = 1
),

time_users as (
    select * from {{ ref('stg_time__users') }}
),

erp_employees as (
    select * from {{ ref('stg_erp__employees') }}
),

overrides as (
    select * from {{ ref('identity_overrides') }}
    where entity_type = 'employee'
),

hr_rows as (
    select
        employee_id,
        'hr' as source_system,
        employee_id as source_id,
        cast(null as {{ dbt.type_string() }}) as realm_id,
        email,
        'canonical' as match_method
    from hr_people
),

time_rows as (
    select
        coalesce(overrides.canonical_source_id, hr_people.employee_id, 'time:' || time_users.time_user_id)
            as employee_id,
        'time' as source_system,
        cast(time_users.time_user_id as {{ dbt.type_string() }}) as source_id,
        cast(null as {{ dbt.type_string() }}) as realm_id,
        time_users.email,
        case
            when overrides.canonical_source_id is not null then 'manual_override'
            when hr_people.employee_id is not null then 'email'
            else 'unmatched'
        end as match_method
    from time_users
    left join overrides
        on overrides.source_system = 'time'
        and overrides.source_id = cast(time_users.time_user_id as {{ dbt.type_string() }})
    left join hr_people on time_users.email = hr_people.email
),

erp_rows as (
    select
        coalesce(
            overrides.canonical_source_id, by_number.employee_id, by_email.employee_id,
            'erp:' || erp_employees.erp_employee_key
        ) as employee_id,
        'erp' as source_system,
        erp_employees.erp_employee_key as source_id,
        erp_employees.realm_id,
        erp_employees.email,
        case
            when overrides.canonical_source_id is not null then 'manual_override'
            when by_number.employee_id is not null then 'shared_id'
            when by_email.employee_id is not null then 'email'
            else 'unmatched'
        end as match_method
    from erp_employees
    left join overrides
        on overrides.source_system = 'erp'
        and overrides.source_id = erp_employees.erp_employee_key
    left join hr_people as by_number on erp_employees.employee_number = by_number.employee_id
    left join hr_people as by_email on erp_employees.email = by_email.email
),

final as (
    select * from hr_rows
    union all
    select * from time_rows
    union all
    select * from erp_rows
)

select * from final
