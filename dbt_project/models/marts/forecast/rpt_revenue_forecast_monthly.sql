{#- Revenue forecast beside recognised revenue: one row per month, practice and revenue type
    (a contract billing method, or weighted_pipeline), from the first month of rpt_revenue to
    the end of the forecast horizon (int_forecast_horizon). Reporting currency throughout.
      recognized_amount_reporting  rpt_revenue's recognised revenue of the month, up to now
                                   (the month in progress holds what is recognised so far)
      forecast_amount_reporting    what is still to come after the as-of date, on the contract's
                                   schedule:
        time_and_materials         assigned hours x the rate card's bill rate effective that day
                                   (fct_forecast_assignment_days); hours without a single
                                   matching rate are counted in unrated_hours, not valued
        fixed_fee_milestones       each milestone not completed by the as-of date, on its due
                                   date (a due date already passed: the day after the as-of date)
        retainer                   the monthly fee in every month the contract runs; in the
                                   month in progress the fee less what rpt_revenue recognised
        fixed_fee_percent_complete fee x the share of budget hours the assigned hours add, month
                                   by month, on top of the approved hours to date, capped at the
                                   fee (rpt_revenue's rule, run forward)
        weighted_pipeline          open opportunities x probability, spread evenly over their
                                   expected delivery (fct_pipeline_forecast_daily)
    Forecast money is converted at the as-of date's rate. A contract's T&M forecast is not
    capped at its contract value: rpt_project_health flags the projects that would pass it. -#}
with horizon as (
    select * from {{ ref('int_forecast_horizon') }}
),

revenue as (
    select * from {{ ref('rpt_revenue') }}
),

contracts as (
    select * from {{ ref('dim_contracts') }}
),

projects as (
    select * from {{ ref('dim_projects') }}
),

assignment_days as (
    select * from {{ ref('fct_forecast_assignment_days') }}
    where is_in_horizon
),

milestones as (
    select * from {{ ref('fct_milestones') }}
),

time_entries as (
    select * from {{ ref('fct_time_entries') }}
),

pipeline as (
    select * from {{ ref('fct_pipeline_forecast_daily') }}
    where is_in_horizon
),

dates as (
    select * from {{ ref('dim_dates') }}
),

fx_rates as (
    select * from {{ ref('int_fx_rates_daily') }}
),

contract_rates as (
    select
        contracts.contract_id,
        contracts.practice,
        contracts.billing_method,
        contracts.start_date,
        contracts.end_date,
        contracts.monthly_fee,
        contracts.contract_value,
        fx.rate_to_reporting
    from contracts
    cross join horizon
    left join fx_rates as fx
        on contracts.currency_code = fx.currency_code
        and horizon.as_of_date = fx.rate_date
),

horizon_months as (
    select
        dates.month_start_date,
        dates.month_end_date
    from dates
    cross join horizon
    where dates.date_day = dates.month_start_date
        and dates.month_start_date >= horizon.as_of_month_start_date
        and dates.month_start_date <= horizon.horizon_end_date
),

time_and_materials as (
    select
        assignment_days.contract_id,
        assignment_days.month_start_date,
        sum(assignment_days.planned_amount_reporting) as forecast_amount_reporting,
        sum(case when assignment_days.bill_rate is null then assignment_days.planned_hours else 0 end)
            as unrated_hours
    from assignment_days
    where assignment_days.billing_method = 'time_and_materials'
    group by assignment_days.contract_id, assignment_days.month_start_date
),

milestones_ahead as (
    select
        milestones.contract_id,
        cast(
            {{ dbt.date_trunc(
                'month',
                'case when milestones.due_date > horizon.as_of_date then milestones.due_date'
                ~ ' else horizon.first_forecast_date end'
            ) }} as date
        ) as month_start_date,
        cast(milestones.amount * contract_rates.rate_to_reporting as decimal(24, 8))
            as forecast_amount_reporting
    from milestones
    cross join horizon
    inner join contract_rates on milestones.contract_id = contract_rates.contract_id
    where contract_rates.billing_method = 'fixed_fee_milestones'
        and milestones.due_date is not null
        and (not milestones.is_completed or milestones.completed_date > horizon.as_of_date)
),

milestone_months as (
    select
        contract_id,
        month_start_date,
        sum(forecast_amount_reporting) as forecast_amount_reporting
    from milestones_ahead
    cross join horizon
    where month_start_date <= horizon.horizon_end_date
    group by contract_id, month_start_date
),

retainers as (
    select
        contract_rates.contract_id,
        horizon_months.month_start_date,
        cast(
            cast(
                contract_rates.monthly_fee - coalesce(
                    case when horizon_months.month_start_date = horizon.as_of_month_start_date
                            then revenue.recognized_amount
                    end, 0
                ) as decimal(24, 8)
            ) * contract_rates.rate_to_reporting as decimal(24, 8)
        ) as forecast_amount_reporting
    from contract_rates
    cross join horizon
    inner join horizon_months
        on horizon_months.month_end_date >= contract_rates.start_date
        and (contract_rates.end_date is null or horizon_months.month_start_date <= contract_rates.end_date)
    left join revenue
        on contract_rates.contract_id = revenue.contract_id
        and horizon_months.month_start_date = revenue.month_start_date
    where contract_rates.billing_method = 'retainer'
        and contract_rates.monthly_fee is not null
        and (contract_rates.end_date is null or contract_rates.end_date > horizon.as_of_date)
),

percent_complete_contracts as (
    select
        contract_rates.contract_id,
        contract_rates.rate_to_reporting,
        coalesce(contract_rates.contract_value, sum(projects.budget_amount)) as fee_amount,
        sum(projects.budget_hours) as budget_hours
    from contract_rates
    inner join projects on contract_rates.contract_id = projects.contract_id
    where contract_rates.billing_method = 'fixed_fee_percent_complete'
    group by contract_rates.contract_id, contract_rates.rate_to_reporting, contract_rates.contract_value
),

approved_to_date as (
    select
        time_entries.contract_id,
        sum(time_entries.hours) as approved_hours
    from time_entries
    cross join horizon
    where time_entries.is_approved
        and time_entries.approved_at <= horizon.as_of_at
        and time_entries.hours > 0
    group by time_entries.contract_id
),

percent_complete_hours as (
    select
        assignment_days.contract_id,
        assignment_days.month_start_date,
        sum(assignment_days.planned_hours) as planned_hours
    from assignment_days
    where assignment_days.billing_method = 'fixed_fee_percent_complete'
    group by assignment_days.contract_id, assignment_days.month_start_date
),

percent_complete_progress as (
    select
        percent_complete_contracts.contract_id,
        percent_complete_hours.month_start_date,
        percent_complete_contracts.fee_amount,
        percent_complete_contracts.budget_hours,
        percent_complete_contracts.rate_to_reporting,
        coalesce(approved_to_date.approved_hours, 0) as approved_hours,
        sum(percent_complete_hours.planned_hours) over (
            partition by percent_complete_contracts.contract_id
            order by percent_complete_hours.month_start_date
            rows between unbounded preceding and current row
        ) as planned_hours_to_month_end,
        percent_complete_hours.planned_hours
    from percent_complete_contracts
    inner join percent_complete_hours
        on percent_complete_contracts.contract_id = percent_complete_hours.contract_id
    left join approved_to_date on percent_complete_contracts.contract_id = approved_to_date.contract_id
    where percent_complete_contracts.budget_hours > 0
),

percent_complete as (
    select
        contract_id,
        month_start_date,
        fee_amount * rate_to_reporting * (
            least(
                cast(1 as {{ type_double() }}),
                {{ divide('(approved_hours + planned_hours_to_month_end)', 'budget_hours') }}
            )
            - least(
                cast(1 as {{ type_double() }}),
                {{ divide('(approved_hours + planned_hours_to_month_end - planned_hours)', 'budget_hours') }}
            )
        ) as forecast_amount_reporting
    from percent_complete_progress
),

contracted as (
    select
        contract_id,
        month_start_date,
        forecast_amount_reporting,
        unrated_hours
    from time_and_materials
    union all
    select
        contract_id,
        month_start_date,
        forecast_amount_reporting,
        0 as unrated_hours
    from milestone_months
    union all
    select
        contract_id,
        month_start_date,
        forecast_amount_reporting,
        0 as unrated_hours
    from retainers
    union all
    select
        contract_id,
        month_start_date,
        forecast_amount_reporting,
        0 as unrated_hours
    from percent_complete
),

forecast_rows as (
    select
        contract_rates.practice,
        contract_rates.billing_method as revenue_type,
        contracted.month_start_date,
        cast(0 as decimal(24, 8)) as recognized_amount_reporting,
        cast(contracted.forecast_amount_reporting as decimal(24, 8)) as forecast_amount_reporting,
        contracted.unrated_hours
    from contracted
    inner join contract_rates on contracted.contract_id = contract_rates.contract_id
    union all
    select
        practice,
        'weighted_pipeline' as revenue_type,
        month_start_date,
        cast(0 as decimal(24, 8)) as recognized_amount_reporting,
        cast(daily_weighted_amount_reporting as decimal(24, 8)) as forecast_amount_reporting,
        0 as unrated_hours
    from pipeline
    union all
    select
        revenue.practice,
        revenue.billing_method as revenue_type,
        revenue.month_start_date,
        revenue.recognized_amount_reporting,
        cast(0 as decimal(24, 8)) as forecast_amount_reporting,
        0 as unrated_hours
    from revenue
    cross join horizon
    where revenue.month_start_date <= horizon.as_of_month_start_date
),

final as (
    select
        cast(forecast_rows.month_start_date as {{ dbt.type_string() }})
        || ':' || coalesce(forecast_rows.practice, '(none)')
        || ':' || coalesce(forecast_rows.revenue_type, '(none)') as revenue_forecast_key,
        forecast_rows.month_start_date,
        forecast_rows.practice,
        forecast_rows.revenue_type,
        forecast_rows.revenue_type = 'weighted_pipeline' as is_pipeline,
        forecast_rows.month_start_date < horizon.as_of_month_start_date as is_past_month,
        forecast_rows.month_start_date = horizon.as_of_month_start_date as is_current_month,
        -- unknown (null), never understated, when any part has no reporting-currency amount
        -- (no exchange rate for it)
        cast({{ known_sum('forecast_rows.recognized_amount_reporting') }} as decimal(24, 8))
            as recognized_amount_reporting,
        cast({{ known_sum('forecast_rows.forecast_amount_reporting') }} as decimal(24, 8))
            as forecast_amount_reporting,
        cast(
            {{ known_sum(
                'forecast_rows.recognized_amount_reporting + forecast_rows.forecast_amount_reporting'
            ) }}
            as decimal(24, 8)
        ) as expected_amount_reporting,
        cast(sum(forecast_rows.unrated_hours) as decimal(14, 4)) as unrated_hours
    from forecast_rows
    cross join horizon
    group by
        forecast_rows.month_start_date,
        forecast_rows.practice,
        forecast_rows.revenue_type,
        horizon.as_of_month_start_date
)

select * from final
