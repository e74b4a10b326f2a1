{#- Utilisation per employee and calendar month, summed from fct_utilization_daily (the one
    definition of the hours). The employee's practice, grade, region and legal entity are those
    of the last day of the month the person has a row (the SCD2 version in force then).
    Utilisations divide by capacity and are null when the month has no capacity (never a
    division by zero). The target is the capacity-weighted mean of the days' targets (= the one
    target in force when it did not change during the month; a person override wins over the
    grade's); in a month without capacity, the target of its last day. -#}
with daily as (
    select * from {{ ref('fct_utilization_daily') }}
),

monthly as (
    select
        employee_id,
        month_start_date,
        count(*) as day_count,
        sum(case when is_scheduled_day then 1 else 0 end) as scheduled_day_count,
        sum(case when is_missing_day then 1 else 0 end) as missing_day_count,
        sum(capacity_hours) as capacity_hours,
        sum(billable_hours) as billable_hours,
        sum(productive_hours) as productive_hours,
        sum(total_hours) as total_hours,
        sum(submitted_on_time_hours) as submitted_on_time_hours,
        sum(compliant_capacity_hours) as compliant_capacity_hours,
        sum(missing_hours) as missing_hours,
        sum(target_billable_hours) as target_billable_hours,
        max(date_day) as last_day
    from daily
    group by employee_id, month_start_date
),

month_end_attributes as (
    select
        daily.employee_id,
        daily.month_start_date,
        daily.employee_version_id,
        daily.practice,
        daily.grade,
        daily.region,
        daily.legal_entity,
        daily.target_billable_utilization as month_end_target
    from daily
    inner join monthly
        on daily.employee_id = monthly.employee_id
        and daily.date_day = monthly.last_day
),

final as (
    select
        monthly.employee_id,
        monthly.month_start_date,
        month_end_attributes.employee_version_id,
        month_end_attributes.practice,
        month_end_attributes.grade,
        month_end_attributes.region,
        month_end_attributes.legal_entity,
        monthly.scheduled_day_count,
        monthly.missing_day_count,
        cast(monthly.capacity_hours as decimal(14, 4)) as capacity_hours,
        cast(monthly.billable_hours as decimal(14, 4)) as billable_hours,
        cast(monthly.productive_hours as decimal(14, 4)) as productive_hours,
        cast(monthly.total_hours as decimal(14, 4)) as total_hours,
        case when monthly.capacity_hours > 0
                then {{ double_to_decimal(
                        divide('monthly.billable_hours', 'monthly.capacity_hours'), 10, 6
                    ) }}
        end
            as billable_utilization,
        case when monthly.capacity_hours > 0
                then {{ double_to_decimal(
                        divide('monthly.productive_hours', 'monthly.capacity_hours'), 10, 6
                    ) }}
        end
            as productive_utilization,
        case when monthly.capacity_hours > 0
                then {{ double_to_decimal(
                        divide('monthly.total_hours', 'monthly.capacity_hours'), 10, 6
                    ) }}
        end
            as total_utilization,
        {{ double_to_decimal(
            "case when monthly.capacity_hours > 0 then "
                ~ divide('monthly.target_billable_hours', 'monthly.capacity_hours')
                ~ " else month_end_attributes.month_end_target end",
            10, 6
        ) }} as target_billable_utilization,
        cast(monthly.target_billable_hours as decimal(14, 4)) as target_billable_hours,
        case when monthly.capacity_hours > 0
                then {{ double_to_decimal(
                        divide('(monthly.billable_hours - monthly.target_billable_hours)', 'monthly.capacity_hours'),
                        10, 6
                    ) }}
        end as billable_utilization_variance,
        cast(monthly.submitted_on_time_hours as decimal(14, 4)) as submitted_on_time_hours,
        cast(monthly.compliant_capacity_hours as decimal(14, 4)) as compliant_capacity_hours,
        case when monthly.capacity_hours > 0
                then {{ double_to_decimal(
                        divide('monthly.compliant_capacity_hours', 'monthly.capacity_hours'), 10, 6
                    ) }}
        end
            as submission_compliance,
        cast(monthly.missing_hours as decimal(14, 4)) as missing_hours
    from monthly
    inner join month_end_attributes
        on monthly.employee_id = month_end_attributes.employee_id
        and monthly.month_start_date = month_end_attributes.month_start_date
)

{#- names beside the ids (macro with_names) -#}

{{ with_names('final', client=false, project_code=false, project_name=false, employee=true) }}
