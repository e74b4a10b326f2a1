-- rpt_utilization, summed per employee, holds every hour of fct_time_entries recorded by a known
-- employee: billable (billable, client, not rejected), productive (client) and total hours.
-- Returns the employees whose sums differ.
with facts as (
    select
        employee_id,
        sum(
            case when is_billable
                    and not coalesce(is_internal_project, false)
                    and approval_status != 'rejected'
                    then hours
                else 0
            end
        ) as billable_hours,
        sum(case when not coalesce(is_internal_project, false) then hours else 0 end) as productive_hours,
        sum(hours) as total_hours
    from {{ ref('fct_time_entries') }}
    where is_known_employee
    group by employee_id
),

mart as (
    select
        employee_id,
        sum(billable_hours) as billable_hours,
        sum(productive_hours) as productive_hours,
        sum(total_hours) as total_hours
    from {{ ref('rpt_utilization') }}
    group by employee_id
)

select
    coalesce(facts.employee_id, mart.employee_id) as employee_id,
    facts.billable_hours as facts_billable_hours,
    mart.billable_hours as mart_billable_hours,
    facts.total_hours as facts_total_hours,
    mart.total_hours as mart_total_hours
from facts
full outer join mart on facts.employee_id = mart.employee_id
where coalesce(facts.billable_hours, 0) != coalesce(mart.billable_hours, 0)
    or coalesce(facts.productive_hours, 0) != coalesce(mart.productive_hours, 0)
    or coalesce(facts.total_hours, 0) != coalesce(mart.total_hours, 0)
