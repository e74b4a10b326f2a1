{#- Revenue recognition, billing, contract balances, cost and margin per contract and month.

    Recognised revenue follows the contract's billing method (../shared/spec/kpis.md):
      time_and_materials         approved billable time valued at its bill rate, in the month
                                 worked (the right to invoice). Time held back by a blocking
                                 exception is not recognised unless the ERP invoiced it anyway.
      fixed_fee_milestones       a milestone's amount in the month it was completed
      fixed_fee_percent_complete fee x min(1, approved hours to date / budget hours), as a
                                 cumulative figure rounded to cents; a month recognises the
                                 change in it
      retainer                   the monthly fee in every month the contract runs (a part month
                                 at the contract's start or end earns the full fee, as billed);
                                 the month in progress earns its days elapsed before now, in cents
    Everything is judged as of the warehouse's now (int_as_of): time approved, milestones
    completed and invoices dated after it do not count, and months run up to its month.
    Money in the contract's currency (transaction) and in the reporting currency: flows at the
    rate of their own dates (time: day worked; milestone: completion; invoices: invoice date;
    percent complete and retainer: the month's valuation date, its last day or now), balances
    (unbilled, deferred, backlog) at the valuation date's rate. Cost is aggregated over people:
    no per-person rate or hours leave this model. -#}
with contracts as (
    select * from {{ ref('dim_contracts') }}
),

projects as (
    select * from {{ ref('dim_projects') }}
),

time_entries as (
    -- only the columns read: the CTE is read three times, and DuckDB materialises such a CTE whole
    select
        time_entry_id,
        contract_id,
        spent_date,
        hours,
        is_billable,
        is_approved,
        approval_status,
        approved_at,
        is_invoiced,
        has_blocking_exception,
        bill_amount,
        bill_amount_reporting,
        cost_currency_code,
        cost_amount,
        cost_amount_reporting
    from {{ ref('fct_time_entries') }}
),

expenses as (
    select * from {{ ref('fct_expenses') }}
),

milestones as (
    select * from {{ ref('fct_milestones') }}
),

invoice_lines as (
    select * from {{ ref('fct_invoice_lines') }}
),

fx_rates as (
    select * from {{ ref('int_fx_rates_daily') }}
),

dates as (
    select * from {{ ref('dim_dates') }}
),

as_of as (
    select * from {{ ref('int_as_of') }}
),

contract_budgets as (
    select
        contract_id,
        sum(budget_hours) as budget_hours,
        sum(budget_amount) as budget_amount
    from projects
    where contract_id is not null
    group by contract_id
),

time_and_materials_revenue as (
    select
        time_entries.contract_id,
        cast({{ dbt.date_trunc('month', 'time_entries.spent_date') }} as date) as month_start_date,
        sum(time_entries.bill_amount) as recognized_amount,
        sum(time_entries.bill_amount_reporting) as recognized_amount_reporting
    from time_entries
    inner join contracts on time_entries.contract_id = contracts.contract_id
    cross join as_of
    where
        contracts.billing_method = 'time_and_materials'
        and time_entries.is_billable
        and time_entries.is_approved
        and time_entries.approved_at <= as_of.as_of_at
        and (time_entries.is_invoiced or not coalesce(time_entries.has_blocking_exception, false))
    group by 1, 2
),

milestone_revenue as (
    select
        milestones.contract_id,
        cast({{ dbt.date_trunc('month', 'milestones.completed_date') }} as date) as month_start_date,
        sum(milestones.amount) as recognized_amount,
        sum(milestones.amount_reporting) as recognized_amount_reporting
    from milestones
    inner join contracts on milestones.contract_id = contracts.contract_id
    cross join as_of
    where
        contracts.billing_method = 'fixed_fee_milestones'
        and milestones.is_completed
        and milestones.completed_date <= as_of.as_of_date
    group by 1, 2
),

-- approved hours (any, billable or not, above zero) drive percent complete
progress_hours as (
    select
        time_entries.contract_id,
        cast({{ dbt.date_trunc('month', 'time_entries.spent_date') }} as date) as month_start_date,
        sum(time_entries.hours) as approved_hours
    from time_entries
    inner join contracts on time_entries.contract_id = contracts.contract_id
    cross join as_of
    where
        contracts.billing_method = 'fixed_fee_percent_complete'
        and time_entries.is_approved
        and time_entries.approved_at <= as_of.as_of_at
        and time_entries.hours > 0
    group by 1, 2
),

billed as (
    select
        invoice_lines.contract_id,
        cast({{ dbt.date_trunc('month', 'invoice_lines.invoice_date') }} as date) as month_start_date,
        sum(invoice_lines.amount) as billed_amount,
        sum(invoice_lines.amount_reporting) as billed_amount_reporting
    from invoice_lines
    cross join as_of
    where invoice_lines.contract_id is not null and invoice_lines.invoice_date <= as_of.as_of_date
    group by 1, 2
),

-- cost in the contract's currency: as is when the cost is in it, else through the reporting
-- currency at the ERP's rates of the day (cost rates are in each employee's payroll currency)
time_costs as (
    select
        time_entries.contract_id,
        cast({{ dbt.date_trunc('month', 'time_entries.spent_date') }} as date) as month_start_date,
        sum(
            case
                when time_entries.cost_currency_code = contracts.currency_code then time_entries.cost_amount
                else {{ double_to_decimal(
                        divide('time_entries.cost_amount_reporting', 'contract_rates.rate_to_reporting'), 24, 8
                    ) }}
            end
        ) as cost_amount,
        sum(time_entries.cost_amount_reporting) as cost_amount_reporting
    from time_entries
    inner join contracts on time_entries.contract_id = contracts.contract_id
    left join fx_rates as contract_rates
        on contracts.currency_code = contract_rates.currency_code
        and time_entries.spent_date = contract_rates.rate_date
    where time_entries.approval_status != 'rejected' and time_entries.hours > 0
    group by 1, 2
),

expense_costs as (
    select
        expenses.contract_id,
        cast({{ dbt.date_trunc('month', 'expenses.spent_date') }} as date) as month_start_date,
        sum(
            case
                when expenses.currency_code = contracts.currency_code then expenses.amount
                else {{ double_to_decimal(
                        divide('expenses.amount_reporting', 'contract_rates.rate_to_reporting'), 24, 8
                    ) }}
            end
        ) as cost_amount,
        sum(expenses.amount_reporting) as cost_amount_reporting
    from expenses
    inner join contracts on expenses.contract_id = contracts.contract_id
    left join fx_rates as contract_rates
        on contracts.currency_code = contract_rates.currency_code
        and expenses.spent_date = contract_rates.rate_date
    where expenses.approval_status != 'rejected'
    group by 1, 2
),

activity_months as (
    select
        contract_id,
        month_start_date
    from time_and_materials_revenue
    union all
    select
        contract_id,
        month_start_date
    from milestone_revenue
    union all
    select
        contract_id,
        month_start_date
    from progress_hours
    union all
    select
        contract_id,
        month_start_date
    from billed
    union all
    select
        contract_id,
        month_start_date
    from time_costs
    union all
    select
        contract_id,
        month_start_date
    from expense_costs
),

contract_bounds as (
    select
        contracts.contract_id,
        least(
            coalesce(
                cast({{ dbt.date_trunc('month', 'contracts.start_date') }} as date),
                min(activity_months.month_start_date)
            ),
            coalesce(
                min(activity_months.month_start_date),
                cast({{ dbt.date_trunc('month', 'contracts.start_date') }} as date)
            )
        ) as first_month_date,
        greatest(
            cast({{ dbt.date_trunc('month', 'as_of.as_of_date') }} as date),
            coalesce(
                max(activity_months.month_start_date),
                cast({{ dbt.date_trunc('month', 'as_of.as_of_date') }} as date)
            )
        ) as last_month_date
    from contracts
    cross join as_of
    left join activity_months on contracts.contract_id = activity_months.contract_id
    group by contracts.contract_id, contracts.start_date, as_of.as_of_date
),

contract_months as (
    select
        contract_bounds.contract_id,
        dates.month_start_date,
        dates.month_end_date,
        least(dates.month_end_date, as_of.as_of_date) as valuation_date,
        dates.month_start_date
        = cast({{ dbt.date_trunc('month', 'as_of.as_of_date') }} as date) as is_current_month
    from contract_bounds
    cross join as_of
    inner join dates
        on dates.date_day = dates.month_start_date
        and dates.month_start_date
        between contract_bounds.first_month_date and contract_bounds.last_month_date
),

joined as (
    select
        contract_months.*,
        contracts.contract_number,
        contracts.client_id,
        contracts.legal_entity,
        contracts.practice,
        contracts.billing_method,
        contracts.currency_code,
        contracts.contract_value,
        contracts.monthly_fee,
        coalesce(contracts.contract_value, contract_budgets.budget_amount) as fee_amount,
        contract_budgets.budget_hours,
        closing_rates.rate_to_reporting as closing_rate_to_reporting,
        time_and_materials_revenue.recognized_amount as tm_amount,
        time_and_materials_revenue.recognized_amount_reporting as tm_amount_reporting,
        milestone_revenue.recognized_amount as milestone_amount,
        milestone_revenue.recognized_amount_reporting as milestone_amount_reporting,
        coalesce(progress_hours.approved_hours, 0) as progress_hours,
        case
            when contracts.billing_method = 'retainer'
                and contract_months.month_end_date >= contracts.start_date
                and (contracts.end_date is null or contract_months.month_start_date <= contracts.end_date)
                then case
                        when contract_months.is_current_month
                        -- the month in progress earns the days elapsed before now
                            then round({{ double_to_decimal(
                                    divide(
                                        'contracts.monthly_fee * ' ~ dbt.datediff(
                                            'contract_months.month_start_date', 'as_of.as_of_date', 'day'
                                        ),
                                        '(' ~ dbt.datediff(
                                            'contract_months.month_start_date', 'contract_months.month_end_date', 'day'
                                        ) ~ ' + 1)'
                                    ),
                                    24, 8
                                ) }}, 2)
                        else contracts.monthly_fee
                    end
        end as retainer_amount,
        coalesce(billed.billed_amount, 0) as billed_amount,
        coalesce(billed.billed_amount_reporting, 0) as billed_amount_reporting,
        coalesce(time_costs.cost_amount, 0) + coalesce(expense_costs.cost_amount, 0) as cost_amount,
        coalesce(time_costs.cost_amount_reporting, 0) + coalesce(expense_costs.cost_amount_reporting, 0)
            as cost_amount_reporting
    from contract_months
    cross join as_of
    inner join contracts on contract_months.contract_id = contracts.contract_id
    left join contract_budgets on contract_months.contract_id = contract_budgets.contract_id
    left join fx_rates as closing_rates
        on contracts.currency_code = closing_rates.currency_code
        and contract_months.valuation_date = closing_rates.rate_date
    left join time_and_materials_revenue
        on contract_months.contract_id = time_and_materials_revenue.contract_id
        and contract_months.month_start_date = time_and_materials_revenue.month_start_date
    left join milestone_revenue
        on contract_months.contract_id = milestone_revenue.contract_id
        and contract_months.month_start_date = milestone_revenue.month_start_date
    left join progress_hours
        on contract_months.contract_id = progress_hours.contract_id
        and contract_months.month_start_date = progress_hours.month_start_date
    left join billed
        on contract_months.contract_id = billed.contract_id
        and contract_months.month_start_date = billed.month_start_date
    left join time_costs
        on contract_months.contract_id = time_costs.contract_id
        and contract_months.month_start_date = time_costs.month_start_date
    left join expense_costs
        on contract_months.contract_id = expense_costs.contract_id
        and contract_months.month_start_date = expense_costs.month_start_date
),

-- percent complete: the cumulative share of budget hours, capped at 1
progress as (
    select
        *,
        sum(progress_hours) over (
            partition by contract_id
            order by month_start_date rows between unbounded preceding and current row
        ) as progress_hours_to_date
    from joined
),

progress_recognized as (
    select
        *,
        case
            when billing_method = 'fixed_fee_percent_complete' and budget_hours > 0
                then least(
                        cast(1 as decimal(12, 8)),
                        {{ double_to_decimal(divide('progress_hours_to_date', 'budget_hours'), 12, 8) }}
                    )
        end as percent_complete,
        case
            when billing_method = 'fixed_fee_percent_complete' and budget_hours > 0
                then cast(
                        least(
                            fee_amount,
                            round(
                                {{ double_to_decimal(
                                    divide('fee_amount * progress_hours_to_date', 'budget_hours'), 24, 8
                                ) }}, 2
                            )
                        )
                        as decimal(24, 8)
                    )
        end as percent_complete_to_date_amount
    from progress
),

recognized as (
    select
        *,
        cast(
            case billing_method
                when 'time_and_materials' then coalesce(tm_amount, 0)
                when 'fixed_fee_milestones' then coalesce(milestone_amount, 0)
                when 'fixed_fee_percent_complete'
                    then
                        coalesce(percent_complete_to_date_amount, 0)
                        - coalesce(lag(percent_complete_to_date_amount) over (
                            partition by contract_id order by month_start_date
                        ), 0)
                when 'retainer' then coalesce(retainer_amount, 0)
                else 0
            end
            as decimal(24, 8)
        ) as recognized_amount,
        cast(
            case billing_method
                when 'time_and_materials' then coalesce(tm_amount_reporting, 0)
                when 'fixed_fee_milestones' then coalesce(milestone_amount_reporting, 0)
                when 'fixed_fee_percent_complete'
                    then
                        (
                            coalesce(percent_complete_to_date_amount, 0)
                            - coalesce(lag(percent_complete_to_date_amount) over (
                                partition by contract_id order by month_start_date
                            ), 0)
                        ) * closing_rate_to_reporting
                when 'retainer' then coalesce(retainer_amount, 0) * closing_rate_to_reporting
                else 0
            end
            as decimal(24, 8)
        ) as recognized_amount_reporting
    from progress_recognized
),

cumulative as (
    select
        *,
        sum(recognized_amount) over (
            partition by contract_id
            order by month_start_date rows between unbounded preceding and current row
        ) as cumulative_recognized_amount,
        sum(recognized_amount_reporting) over (
            partition by contract_id
            order by month_start_date rows between unbounded preceding and current row
        ) as cumulative_recognized_amount_reporting,
        sum(billed_amount) over (
            partition by contract_id
            order by month_start_date rows between unbounded preceding and current row
        ) as cumulative_billed_amount,
        sum(billed_amount_reporting) over (
            partition by contract_id
            order by month_start_date rows between unbounded preceding and current row
        ) as cumulative_billed_amount_reporting
    from recognized
),

balances as (
    select
        *,
        case
            when cumulative_recognized_amount > cumulative_billed_amount
                then cumulative_recognized_amount - cumulative_billed_amount
            else 0
        end as unbilled_receivable_amount,
        case
            when cumulative_billed_amount > cumulative_recognized_amount
                then cumulative_billed_amount - cumulative_recognized_amount
            else 0
        end as deferred_revenue_amount,
        case
            when billing_method in (
                    'fixed_fee_milestones', 'fixed_fee_percent_complete', 'time_and_materials'
                )
                and contract_value is not null
                then greatest(contract_value - cumulative_recognized_amount, 0)
        end as backlog_amount
    from cumulative
),

final as (
    select
        contract_id || ':' || cast(month_start_date as {{ dbt.type_string() }}) as contract_month_key,
        contract_id,
        contract_number,
        client_id,
        legal_entity,
        practice,
        billing_method,
        currency_code,
        month_start_date,
        month_end_date,
        valuation_date,
        is_current_month,
        contract_value,
        closing_rate_to_reporting,
        percent_complete,
        recognized_amount,
        recognized_amount_reporting,
        cast(billed_amount as decimal(18, 2)) as billed_amount,
        cast(billed_amount_reporting as decimal(24, 8)) as billed_amount_reporting,
        cast(cumulative_recognized_amount as decimal(24, 8)) as cumulative_recognized_amount,
        cast(cumulative_recognized_amount_reporting as decimal(24, 8))
            as cumulative_recognized_amount_reporting,
        cast(cumulative_billed_amount as decimal(18, 2)) as cumulative_billed_amount,
        cast(cumulative_billed_amount_reporting as decimal(24, 8)) as cumulative_billed_amount_reporting,
        cast(unbilled_receivable_amount as decimal(24, 8)) as unbilled_receivable_amount,
        cast(unbilled_receivable_amount * closing_rate_to_reporting as decimal(24, 8))
            as unbilled_receivable_amount_reporting,
        cast(deferred_revenue_amount as decimal(24, 8)) as deferred_revenue_amount,
        cast(deferred_revenue_amount * closing_rate_to_reporting as decimal(24, 8))
            as deferred_revenue_amount_reporting,
        cast(cost_amount as decimal(24, 8)) as cost_amount,
        cast(cost_amount_reporting as decimal(24, 8)) as cost_amount_reporting,
        cast(recognized_amount - cost_amount as decimal(24, 8)) as gross_margin_amount,
        cast(recognized_amount_reporting - cost_amount_reporting as decimal(24, 8))
            as gross_margin_amount_reporting,
        case
            when recognized_amount_reporting != 0
                then {{ double_to_decimal(
                        divide('(recognized_amount_reporting - cost_amount_reporting)', 'recognized_amount_reporting'),
                        12, 6
                    ) }}
        end as gross_margin_pct,
        cast(backlog_amount as decimal(24, 8)) as backlog_amount,
        cast(backlog_amount * closing_rate_to_reporting as decimal(24, 8)) as backlog_amount_reporting
    from balances
)

{#- names beside the ids (macro with_names) -#}


{{ with_names('final', project_code=false, project_name=false) }}
