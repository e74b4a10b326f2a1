{#- Project health: one row per client project (dim_projects, not internal) with work recorded
    or assigned, with its lead. Reporting currency; as of the warehouse's now.
      hours_to_date        recorded hours to the as-of date (not rejected, above zero)
      remaining_hours      assigned hours after the as-of date (estimate to complete, ETC)
      eac_hours            estimate at completion: hours_to_date + remaining_hours
      hours_burn           hours_to_date / budget_hours (null without a budget)
      value_to_date        billable time at its bill rate (fct_time_entries.bill_amount)
      remaining_value      assigned hours at the rate card (fct_forecast_assignment_days);
                           remaining_unrated_hours have no single rate and are not valued
      value_at_completion  value_to_date + remaining_value: the effort at bill rates
      revenue_at_completion time and materials: value_at_completion; fixed fee and retainer:
                           the project's budget amount, else its contract's value (the fee)
      cost_to_date         recorded time at cost plus approved or pending expenses
      remaining_cost       assigned hours x the assignee's current hourly cost (HR), at the
                           as-of date's rate; people without a cost rate are counted in
                           remaining_uncosted_hours
      cost_at_completion, margin_at_completion (revenue - cost), margin_at_completion_pct
    Flags: over budget hours (eac_hours > budget_hours), over budget amount
    (value_at_completion > budget_amount), over contract value (the contract's projects'
    value_at_completion together above contract_value, time and materials only: a fixed fee
    earns no more), loss at completion (margin_at_completion < 0). Cost is a project total
    over its people; no person's rate is shown. -#}
with projects as (
    select * from {{ ref('dim_projects') }}
),

contracts as (
    select * from {{ ref('dim_contracts') }}
),

employees as (
    select * from {{ ref('dim_employees') }}
),

time_entries as (
    select * from {{ ref('fct_time_entries') }}
),

expenses as (
    select * from {{ ref('fct_expenses') }}
),

assignment_days as (
    select * from {{ ref('fct_forecast_assignment_days') }}
),

fx_rates as (
    select * from {{ ref('int_fx_rates_daily') }}
),

horizon as (
    select * from {{ ref('int_forecast_horizon') }}
),

to_date as (
    select
        time_entries.project_id,
        sum(time_entries.hours) as hours_to_date,
        sum(case when time_entries.is_billable then time_entries.bill_amount_reporting else 0 end)
            as value_to_date_reporting,
        sum(time_entries.cost_amount_reporting) as time_cost_to_date_reporting,
        max(time_entries.spent_date) as last_recorded_date
    from time_entries
    cross join horizon
    where time_entries.approval_status != 'rejected'
        and time_entries.hours > 0
        and time_entries.spent_date <= horizon.as_of_date
    group by time_entries.project_id
),

expenses_to_date as (
    select
        expenses.project_id,
        sum(expenses.amount_reporting) as expense_cost_to_date_reporting
    from expenses
    cross join horizon
    where expenses.approval_status != 'rejected'
        and expenses.spent_date <= horizon.as_of_date
    group by expenses.project_id
),

current_costs as (
    select
        employees.employee_id,
        cast(employees.hourly_cost * fx.rate_to_reporting as decimal(24, 8)) as hourly_cost_reporting
    from employees
    cross join horizon
    left join fx_rates as fx
        on employees.cost_currency_code = fx.currency_code
        and horizon.as_of_date = fx.rate_date
    where employees.is_current
),

remaining as (
    select
        assignment_days.project_id,
        sum(assignment_days.planned_hours) as remaining_hours,
        sum(assignment_days.planned_amount_reporting) as remaining_value_reporting,
        sum(case when assignment_days.bill_rate is null then assignment_days.planned_hours else 0 end)
            as remaining_unrated_hours,
        sum(cast(assignment_days.planned_hours * current_costs.hourly_cost_reporting as decimal(24, 8)))
            as remaining_cost_reporting,
        sum(
            case
                when current_costs.hourly_cost_reporting is null then assignment_days.planned_hours
                else 0
            end
        )
            as remaining_uncosted_hours,
        max(assignment_days.date_day) as last_assigned_date
    from assignment_days
    left join current_costs on assignment_days.employee_id = current_costs.employee_id
    group by assignment_days.project_id
),

project_rates as (
    select
        projects.project_id,
        fx.rate_to_reporting
    from projects
    cross join horizon
    left join fx_rates as fx
        on projects.currency_code = fx.currency_code
        and horizon.as_of_date = fx.rate_date
),

contract_rates as (
    select
        contracts.contract_id,
        contracts.contract_value,
        cast(contracts.contract_value * fx.rate_to_reporting as decimal(24, 8)) as contract_value_reporting
    from contracts
    cross join horizon
    left join fx_rates as fx
        on contracts.currency_code = fx.currency_code
        and horizon.as_of_date = fx.rate_date
),

leads as (
    select
        email,
        min(employee_id) as employee_id,
        min(full_name) as full_name
    from employees
    where is_current and email is not null
    group by email
),

joined as (
    select
        projects.project_id,
        projects.project_code,
        projects.project_name,
        projects.client_id,
        projects.contract_id,
        projects.billing_method,
        projects.project_status,
        projects.practice,
        projects.legal_entity,
        projects.start_date,
        projects.due_date,
        projects.project_lead_email,
        leads.employee_id as project_lead_employee_id,
        leads.full_name as project_lead_name,
        projects.budget_hours,
        cast(projects.budget_amount * project_rates.rate_to_reporting as decimal(24, 8))
            as budget_amount_reporting,
        contract_rates.contract_value_reporting,
        coalesce(to_date.hours_to_date, 0) as hours_to_date,
        coalesce(remaining.remaining_hours, 0) as remaining_hours,
        coalesce(to_date.value_to_date_reporting, 0) as value_to_date_reporting,
        coalesce(remaining.remaining_value_reporting, 0) as remaining_value_reporting,
        coalesce(remaining.remaining_unrated_hours, 0) as remaining_unrated_hours,
        coalesce(to_date.time_cost_to_date_reporting, 0)
        + coalesce(expenses_to_date.expense_cost_to_date_reporting, 0)
            as cost_to_date_reporting,
        coalesce(remaining.remaining_cost_reporting, 0) as remaining_cost_reporting,
        coalesce(remaining.remaining_uncosted_hours, 0) as remaining_uncosted_hours,
        to_date.last_recorded_date,
        remaining.last_assigned_date
    from projects
    left join to_date on projects.project_id = to_date.project_id
    left join expenses_to_date on projects.project_id = expenses_to_date.project_id
    left join remaining on projects.project_id = remaining.project_id
    left join project_rates on projects.project_id = project_rates.project_id
    left join contract_rates on projects.contract_id = contract_rates.contract_id
    left join leads on projects.project_lead_email = leads.email
    where not coalesce(projects.is_internal, false)
        and (to_date.project_id is not null or remaining.project_id is not null)
),

at_completion as (
    select
        *,
        hours_to_date + remaining_hours as eac_hours,
        value_to_date_reporting + remaining_value_reporting as value_at_completion_reporting,
        case
            when billing_method = 'time_and_materials'
                then value_to_date_reporting + remaining_value_reporting
            else coalesce(budget_amount_reporting, contract_value_reporting)
        end as revenue_at_completion_reporting,
        cost_to_date_reporting + remaining_cost_reporting as cost_at_completion_reporting,
        sum(value_to_date_reporting + remaining_value_reporting) over (partition by contract_id)
            as contract_value_at_completion_reporting
    from joined
),

final as (
    select
        project_id,
        project_code,
        project_name,
        client_id,
        contract_id,
        billing_method,
        project_status,
        practice,
        legal_entity,
        start_date,
        due_date,
        project_lead_email,
        project_lead_employee_id,
        coalesce(project_lead_name, project_lead_email) as project_lead_name,
        cast(budget_hours as decimal(14, 4)) as budget_hours,
        cast(budget_amount_reporting as decimal(24, 8)) as budget_amount_reporting,
        cast(contract_value_reporting as decimal(24, 8)) as contract_value_reporting,
        cast(hours_to_date as decimal(14, 4)) as hours_to_date,
        cast(remaining_hours as decimal(14, 4)) as remaining_hours,
        cast(eac_hours as decimal(14, 4)) as eac_hours,
        case when budget_hours > 0
                then {{ double_to_decimal(divide('hours_to_date', 'budget_hours'), 12, 6) }}
        end as hours_burn,
        case when budget_hours > 0
                then {{ double_to_decimal(divide('eac_hours', 'budget_hours'), 12, 6) }}
        end as eac_hours_to_budget,
        cast(value_to_date_reporting as decimal(24, 8)) as value_to_date_reporting,
        cast(remaining_value_reporting as decimal(24, 8)) as remaining_value_reporting,
        cast(remaining_unrated_hours as decimal(14, 4)) as remaining_unrated_hours,
        cast(value_at_completion_reporting as decimal(24, 8)) as value_at_completion_reporting,
        cast(revenue_at_completion_reporting as decimal(24, 8)) as revenue_at_completion_reporting,
        cast(cost_to_date_reporting as decimal(24, 8)) as cost_to_date_reporting,
        cast(remaining_cost_reporting as decimal(24, 8)) as remaining_cost_reporting,
        cast(remaining_uncosted_hours as decimal(14, 4)) as remaining_uncosted_hours,
        cast(cost_at_completion_reporting as decimal(24, 8)) as cost_at_completion_reporting,
        cast(revenue_at_completion_reporting - cost_at_completion_reporting as decimal(24, 8))
            as margin_at_completion_reporting,
        case when revenue_at_completion_reporting > 0
                then {{ double_to_decimal(
                        divide('(revenue_at_completion_reporting - cost_at_completion_reporting)',
                            'revenue_at_completion_reporting'),
                        12, 6
                    ) }}
        end as margin_at_completion_pct,
        coalesce(budget_hours > 0 and eac_hours > budget_hours, false) as is_forecast_over_budget_hours,
        coalesce(
            budget_amount_reporting > 0 and value_at_completion_reporting > budget_amount_reporting, false
        )
            as is_forecast_over_budget_amount,
        coalesce(
            billing_method = 'time_and_materials'
            and contract_value_at_completion_reporting > contract_value_reporting,
            false
        ) as is_forecast_over_contract_value,
        coalesce(revenue_at_completion_reporting - cost_at_completion_reporting < 0, false)
            as is_forecast_loss,
        last_recorded_date,
        last_assigned_date
    from at_completion
)

{{ with_names('final', project_code=false, project_name=false) }}
