{#- Assigned work ahead: one row per PSA assignment and working day after the as-of date, to the
    assignment's end (not cut at the horizon: project health needs every remaining hour).
    planned_hours = hours_per_week / 5 on each weekday that is not a public holiday of the
    assignee's legal entity (the project's when the assignee is no HR employee): the rule of
    fct_assignments_weekly, by day, so a week's days here sum to that week's planned_hours there.

    Value at the bill rate: the project's rate card (else its contract's: the lookup of
    int_time_entries_rated) for the assignment's role, the version effective that day; taken
    only when exactly one version matches (matching_rate_count), else bill_rate is null and the
    row is counted as unrated, never as 0. Converted to the reporting currency at the rate of
    the as-of date (the latest quote: future rates are unknown). -#}
{%- set far_future = "cast('9999-12-31' as date)" -%}
with assignments as (
    select * from {{ ref('int_assignments_resolved') }}
),

employees as (
    select * from {{ ref('dim_employees') }}
),

projects as (
    select * from {{ ref('dim_projects') }}
),

dates as (
    select * from {{ ref('dim_dates') }}
),

calendar as (
    select * from {{ ref('int_legal_entity_working_days') }}
),

rate_cards as (
    select * from {{ ref('stg_psa__rate_cards') }}
),

rate_card_versions as (
    select * from {{ ref('stg_psa__rate_card_versions') }}
),

fx_rates as (
    select * from {{ ref('int_fx_rates_daily') }}
),

horizon as (
    select * from {{ ref('int_forecast_horizon') }}
),

assignment_days as (
    select
        assignments.assignment_id,
        assignments.project_id,
        assignments.contract_id,
        assignments.employee_id,
        assignments.is_known_employee,
        assignments.role,
        assignments.hours_per_week,
        assignments.project_legal_entity,
        dates.date_day,
        dates.week_start_date,
        dates.month_start_date
    from assignments
    cross join horizon
    inner join dates
        on dates.date_day >= assignments.start_date
        and dates.date_day <= assignments.end_date
        and dates.date_day >= horizon.first_forecast_date
    where not dates.is_weekend
),

with_entity as (
    select
        assignment_days.*,
        employees.practice as employee_practice,
        employees.grade as employee_grade,
        coalesce(employees.legal_entity, assignment_days.project_legal_entity) as legal_entity
    from assignment_days
    left join employees
        on assignment_days.employee_id = employees.employee_id
        and assignment_days.date_day >= employees.valid_from
        and (employees.valid_to is null or assignment_days.date_day < employees.valid_to)
),

working as (
    select with_entity.*
    from with_entity
    left join calendar
        on with_entity.legal_entity = calendar.legal_entity
        and with_entity.date_day = calendar.date_day
    where not coalesce(calendar.is_holiday, false)
),

cards_by_project as (
    select
        projects.project_id,
        rate_cards.rate_card_id
    from projects
    inner join rate_cards on projects.psa_project_id = rate_cards.psa_project_id
),

cards_by_contract as (
    select
        projects.project_id,
        rate_cards.rate_card_id
    from projects
    inner join rate_cards on projects.contract_number = rate_cards.contract_number
    where projects.project_id not in (select project_id from cards_by_project)
),

project_cards as (
    select * from cards_by_project
    union all
    select * from cards_by_contract
),

matching_versions as (
    select
        working.assignment_id,
        working.date_day,
        count(*) as matching_rate_count,
        min(rate_card_versions.bill_rate) as bill_rate,
        min(rate_card_versions.currency_code) as rate_currency_code
    from working
    inner join project_cards on working.project_id = project_cards.project_id
    inner join rate_card_versions
        on project_cards.rate_card_id = rate_card_versions.rate_card_id
        and coalesce(working.role, working.employee_grade) = rate_card_versions.role
        and working.date_day >= rate_card_versions.effective_from
        and working.date_day <= coalesce(rate_card_versions.effective_to, {{ far_future }})
    group by working.assignment_id, working.date_day
),

rated as (
    select
        working.*,
        cast(working.hours_per_week / 5 as decimal(12, 4)) as planned_hours,
        coalesce(matching_versions.matching_rate_count, 0) as matching_rate_count,
        case when matching_versions.matching_rate_count = 1 then matching_versions.bill_rate end as bill_rate,
        case when matching_versions.matching_rate_count = 1 then matching_versions.rate_currency_code end
            as rate_currency_code
    from working
    left join matching_versions
        on working.assignment_id = matching_versions.assignment_id
        and working.date_day = matching_versions.date_day
),

final as (
    select
        rated.assignment_id || ':' || cast(rated.date_day as {{ dbt.type_string() }}) as assignment_day_id,
        rated.assignment_id,
        rated.date_day,
        rated.week_start_date,
        rated.month_start_date,
        rated.project_id,
        projects.contract_id,
        projects.billing_method,
        coalesce(projects.practice, rated.employee_practice) as project_practice,
        rated.employee_id,
        rated.is_known_employee,
        rated.employee_practice,
        rated.employee_grade,
        rated.legal_entity,
        rated.role,
        rated.planned_hours,
        rated.date_day <= horizon.horizon_end_date as is_in_horizon,
        rated.matching_rate_count,
        rated.bill_rate,
        rated.rate_currency_code,
        cast(rated.planned_hours * rated.bill_rate as decimal(24, 8)) as planned_amount,
        fx.rate_to_reporting as fx_rate_to_reporting,
        cast(
            cast(rated.planned_hours * rated.bill_rate as decimal(24, 8)) * fx.rate_to_reporting
            as decimal(24, 8)
        ) as planned_amount_reporting
    from rated
    cross join horizon
    left join projects on rated.project_id = projects.project_id
    left join fx_rates as fx
        on rated.rate_currency_code = fx.currency_code
        and horizon.as_of_date = fx.rate_date
)

select * from final
