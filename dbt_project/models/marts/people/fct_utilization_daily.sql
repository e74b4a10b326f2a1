{#- Utilisation at its finest grain: one row per employee and day, for every weekday of
    employment up to the as-of date (fct_capacity_daily) and every other day someone recorded
    time (a weekend, a day after leaving). The one definition of capacity, billable, productive
    and total hours, submission compliance and missing time: rpt_utilization and the semantic
    layer sum these columns.
      billable_hours   billable client time (not internal) whose approval status is not rejected
      productive_hours all client time (billable or not), whatever its approval status
      total_hours      everything recorded, internal time included
      submitted_on_time_hours  hours submitted before 24:00 UTC of the 2nd working day after the
                       day worked, in the calendar of the person's legal entity that day
      compliant_capacity_hours least(capacity, submitted on time): the capacity covered in time
      missing_hours    capacity not covered by anything recorded: greatest(capacity - total, 0)
    Only time of employees HR knows counts (time of unknown time-tool users is in
    fct_exceptions as TIME_UNKNOWN_EMPLOYEE and has no capacity to measure it against).
    The employee attributes are the SCD2 version of that day; the target is the dated
    utilization_targets row in force that day, a person override winning over the grade.
    No cost here: hourly cost is sensitive and utilisation does not need it. -#}
with capacity as (
    select * from {{ ref('fct_capacity_daily') }}
),

time_entries as (
    select * from {{ ref('fct_time_entries') }}
    where is_known_employee
),

employees as (
    select * from {{ ref('dim_employees') }}
),

working_days as (
    select * from {{ ref('int_legal_entity_working_days') }}
),

targets as (
    select * from {{ ref('utilization_targets') }}
),

entry_flags as (
    select
        time_entries.employee_id,
        time_entries.spent_date as date_day,
        time_entries.hours,
        time_entries.submitted_at,
        not coalesce(time_entries.is_internal_project, false) as is_client_work,
        time_entries.is_billable
        and not coalesce(time_entries.is_internal_project, false)
        and time_entries.approval_status != 'rejected' as is_billable_work
    from time_entries
),

-- the day's SCD2 version for days with time but no capacity row (weekends, after leaving)
recorded_days as (
    select
        entry_flags.employee_id,
        entry_flags.date_day,
        sum(case when entry_flags.is_billable_work then entry_flags.hours else 0 end) as billable_hours,
        sum(case when entry_flags.is_client_work then entry_flags.hours else 0 end) as productive_hours,
        sum(entry_flags.hours) as total_hours,
        count(*) as time_entry_count
    from entry_flags
    group by entry_flags.employee_id, entry_flags.date_day
),

employee_days as (
    select
        coalesce(capacity.employee_id, recorded_days.employee_id) as employee_id,
        coalesce(capacity.date_day, recorded_days.date_day) as date_day,
        capacity.employee_version_id as capacity_version_id,
        capacity.employee_id is not null as is_scheduled_day,
        coalesce(capacity.is_holiday, false) as is_holiday,
        coalesce(capacity.time_off_hours, 0) as time_off_hours,
        coalesce(capacity.standard_hours, 0) as standard_hours,
        coalesce(capacity.capacity_hours, 0) as capacity_hours,
        coalesce(recorded_days.billable_hours, 0) as billable_hours,
        coalesce(recorded_days.productive_hours, 0) as productive_hours,
        coalesce(recorded_days.total_hours, 0) as total_hours,
        coalesce(recorded_days.time_entry_count, 0) as time_entry_count
    from capacity
    full outer join recorded_days
        on capacity.employee_id = recorded_days.employee_id
        and capacity.date_day = recorded_days.date_day
),

versioned as (
    select
        employee_days.*,
        employees.employee_version_id,
        employees.legal_entity,
        employees.practice,
        employees.grade,
        employees.region
    from employee_days
    left join employees
        on employee_days.employee_id = employees.employee_id
        and employee_days.date_day >= employees.valid_from
        and (employees.valid_to is null or employee_days.date_day < employees.valid_to)
),

-- submitted by 24:00 UTC of the 2nd working day after the day worked (entity calendar);
-- a weekend or holiday carries the number of the working day before it
submission_deadlines as (
    select
        versioned.employee_id,
        versioned.date_day,
        cast({{ dbt.dateadd('day', 1, 'deadline_day.date_day') }} as timestamp) as submission_due_at
    from versioned
    inner join working_days as worked
        on versioned.legal_entity = worked.legal_entity
        and versioned.date_day = worked.date_day
    inner join working_days as deadline_day
        on worked.legal_entity = deadline_day.legal_entity
        and deadline_day.working_day_number = worked.working_day_number + 2
        and deadline_day.is_working_day
),

submitted_on_time as (
    select
        entry_flags.employee_id,
        entry_flags.date_day,
        sum(entry_flags.hours) as submitted_on_time_hours
    from entry_flags
    inner join submission_deadlines
        on entry_flags.employee_id = submission_deadlines.employee_id
        and entry_flags.date_day = submission_deadlines.date_day
    where entry_flags.submitted_at < submission_deadlines.submission_due_at
    group by entry_flags.employee_id, entry_flags.date_day
),

-- the target in force that day: a person override first, else the grade's
day_targets as (
    select
        versioned.employee_id,
        versioned.date_day,
        {{ target_in_force() }} as target_billable_utilization
    from versioned
    {{ utilization_target_joins('targets', 'versioned') }}
),

final as (
    select
        versioned.employee_id,
        versioned.employee_version_id,
        versioned.date_day,
        cast({{ dbt.date_trunc('week', 'versioned.date_day') }} as date) as week_start_date,
        cast({{ dbt.date_trunc('month', 'versioned.date_day') }} as date) as month_start_date,
        cast({{ dbt.date_trunc('quarter', 'versioned.date_day') }} as date) as quarter_start_date,
        versioned.legal_entity,
        versioned.practice,
        versioned.grade,
        versioned.region,
        versioned.is_scheduled_day,
        versioned.is_holiday,
        cast(versioned.time_off_hours as decimal(12, 4)) as time_off_hours,
        cast(versioned.standard_hours as decimal(12, 4)) as standard_hours,
        cast(versioned.capacity_hours as decimal(12, 4)) as capacity_hours,
        cast(versioned.billable_hours as decimal(12, 4)) as billable_hours,
        cast(versioned.productive_hours as decimal(12, 4)) as productive_hours,
        cast(versioned.total_hours as decimal(12, 4)) as total_hours,
        versioned.time_entry_count,
        cast(coalesce(submitted_on_time.submitted_on_time_hours, 0) as decimal(12, 4))
            as submitted_on_time_hours,
        cast(
            least(versioned.capacity_hours, coalesce(submitted_on_time.submitted_on_time_hours, 0))
            as decimal(12, 4)
        ) as compliant_capacity_hours,
        cast(greatest(versioned.capacity_hours - versioned.total_hours, 0) as decimal(12, 4))
            as missing_hours,
        versioned.capacity_hours > 0 and versioned.total_hours = 0 as is_missing_day,
        day_targets.target_billable_utilization,
        cast(versioned.capacity_hours * day_targets.target_billable_utilization as decimal(14, 6))
            as target_billable_hours
    from versioned
    left join submitted_on_time
        on versioned.employee_id = submitted_on_time.employee_id
        and versioned.date_day = submitted_on_time.date_day
    left join day_targets
        on versioned.employee_id = day_targets.employee_id
        and versioned.date_day = day_targets.date_day
)

select * from final
