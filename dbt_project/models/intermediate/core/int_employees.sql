{#- Employees with history (SCD2): one row per employee version. Join facts on
    employee_id and valid_from <= day < coalesce(valid_to, far future). hourly_cost is
    sensitive (restricted to finance; dashboards never select it). -#}
with versions as (
    select * from {{ ref('int_employees_versioned') }}
),

source_ids as (
    select * from {{ ref('int_employee_source_ids') }}
),

by_employee as (
    select
        employee_id,
        min(case when source_system = 'time' then source_id end) as time_user_id,
        {{ dbt.listagg("case when source_system = 'erp' then source_id end", "','", "order by source_id") }}
            as erp_employee_keys
    from source_ids
    group by employee_id
),

final as (
    select
        versions.employee_version_id,
        versions.employee_id,
        versions.valid_from,
        versions.valid_to,
        versions.is_current,
        versions.full_name,
        versions.email,
        versions.grade,
        versions.practice,
        versions.region,
        versions.legal_entity,
        versions.cost_centre,
        versions.weekly_standard_hours,
        versions.manager_employee_id,
        versions.hire_date,
        versions.termination_date,
        versions.hourly_cost,
        versions.cost_currency_code,
        by_employee.time_user_id,
        by_employee.erp_employee_keys
    from versions
    left join by_employee on versions.employee_id = by_employee.employee_id
)

select * from final
