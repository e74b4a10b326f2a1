{#- Every snapshot's view of every employee: the HR drop delivers full snapshots, so history
    (grade, practice, cost centre changes) is read from consecutive snapshots downstream. -#}
with source as (
    select * from {{ source('hr', 'employees') }}
),

final as (
    select
        employee_id,
        snapshot_date,
        lower(email) as email,
        first_name,
        last_name,
        first_name || ' ' || last_name as full_name,
        grade,
        practice,
        region,
        legal_entity,
        cost_centre,
        hire_date,
        termination_date,
        {{ hours('weekly_standard_hours') }} as weekly_standard_hours,
        manager_id as manager_employee_id,
        file_name
    from source
)

select * from final
