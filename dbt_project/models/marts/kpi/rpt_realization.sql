{#- Realisation and effective bill rate per client project, calendar month and transaction
    currency (one currency per project in practice: the rate card's, which is the project's).
    Time by the month worked; fee invoices (milestone, percent-complete, retainer lines) by the
    month of the invoice.
      standard_value      billable, not-rejected hours x the standard rate (the rate-card
                          version in force on the day worked), fct_time_entries.standard_amount
      billed_time_amount  what the ERP invoiced for the hours worked in the month (the invoice
                          lines carrying them, as invoiced)
      billed_fee_amount   fee lines invoiced in the month (fixed fee and retainer projects)
      billed_amount       billed_time_amount + billed_fee_amount
      realization_rate    billed_amount / standard_value (null when no standard value)
      revenue             recognised time-and-materials value + billed fees: on T&M projects the
                          approved billable time of the month at its applied bill rate
                          (fct_time_entries.bill_amount: the invoiced rate once invoiced, else the
                          standard rate), the spec's T&M "right to invoice" recognition; on fixed
                          fee and retainer projects the fee lines invoiced in the month. Revenue
                          recognised by method (percent complete, milestones on completion) is
                          rpt_revenue's; this one is the billing view.
      effective_bill_rate revenue / client_hours (all hours recorded on the project, billable or
                          not), null when no hours
    T&M hours worked in a month the ERP has not invoiced yet lower that month's realisation
    until they are billed; billed_standard_value and billed_time_realization_rate compare only
    the hours already billed (and only those with a standard rate); their reporting-currency
    parts (billed_rated_time_amount_reporting over billed_standard_value_reporting) let a group
    of projects, months or currencies sum before dividing (the metric
    billed_time_realization_rate). Billable hours with no
    single standard rate (TIME_NO_RATE / TIME_RATE_CONFLICT) have no standard value; they are
    counted in unrated_billable_hours, and what was billed for them stays in billed_amount.
    Reporting-currency amounts use the ERP rate of the day worked (time) or of the invoice date
    (fees). -#}
with time_entries as (
    select * from {{ ref('fct_time_entries') }}
    where not coalesce(is_internal_project, false)
),

invoice_lines as (
    select * from {{ ref('fct_invoice_lines') }}
    where line_kind != 'time' and project_id is not null
),

projects as (
    select * from {{ ref('dim_projects') }}
),

time_monthly as (
    select
        time_entries.project_id,
        cast({{ dbt.date_trunc('month', 'time_entries.spent_date') }} as date) as month_start_date,
        coalesce(time_entries.currency_code, projects.currency_code) as currency_code,
        sum(time_entries.hours) as client_hours,
        sum(case when time_entries.is_billable and time_entries.approval_status != 'rejected'
                then time_entries.hours
            else 0
        end) as billable_hours,
        sum(case when time_entries.is_billable and time_entries.approval_status != 'rejected'
                then time_entries.standard_amount
        end) as standard_value,
        sum(case when time_entries.is_billable and time_entries.approval_status != 'rejected'
                then time_entries.standard_amount_reporting
        end) as standard_value_reporting,
        sum(case when time_entries.is_invoiced then time_entries.hours else 0 end) as billed_hours,
        sum(case when time_entries.is_billable and time_entries.approval_status != 'rejected'
                and time_entries.standard_amount is null
                then time_entries.hours
            else 0
        end) as unrated_billable_hours,
        sum(case when time_entries.is_invoiced then time_entries.standard_amount end)
            as billed_standard_value,
        sum(case when time_entries.is_invoiced and time_entries.standard_amount is not null
                then time_entries.invoiced_amount
        end) as billed_rated_time_amount,
        sum(case when time_entries.is_invoiced then time_entries.standard_amount_reporting end)
            as billed_standard_value_reporting,
        sum(case when time_entries.is_invoiced and time_entries.standard_amount is not null
                then time_entries.invoiced_amount * time_entries.fx_rate_to_reporting
        end) as billed_rated_time_amount_reporting,
        sum(case when time_entries.is_invoiced then time_entries.invoiced_amount end) as billed_time_amount,
        sum(case when time_entries.is_invoiced
                then time_entries.invoiced_amount * time_entries.fx_rate_to_reporting
        end) as billed_time_amount_reporting,
        sum(case when time_entries.billing_method = 'time_and_materials'
                and time_entries.is_billable and time_entries.is_approved
                then time_entries.bill_amount
        end) as tm_revenue,
        sum(case when time_entries.billing_method = 'time_and_materials'
                and time_entries.is_billable and time_entries.is_approved
                then time_entries.bill_amount_reporting
        end) as tm_revenue_reporting
    from time_entries
    left join projects on time_entries.project_id = projects.project_id
    group by 1, 2, 3
),

fees_monthly as (
    select
        invoice_lines.project_id,
        cast({{ dbt.date_trunc('month', 'invoice_lines.invoice_date') }} as date) as month_start_date,
        invoice_lines.currency_code,
        sum(invoice_lines.amount) as billed_fee_amount,
        sum(invoice_lines.amount_reporting) as billed_fee_amount_reporting
    from invoice_lines
    group by 1, 2, 3
),

combined as (
    select
        coalesce(time_monthly.project_id, fees_monthly.project_id) as project_id,
        coalesce(time_monthly.month_start_date, fees_monthly.month_start_date) as month_start_date,
        coalesce(time_monthly.currency_code, fees_monthly.currency_code) as currency_code,
        coalesce(time_monthly.client_hours, 0) as client_hours,
        coalesce(time_monthly.billable_hours, 0) as billable_hours,
        coalesce(time_monthly.billed_hours, 0) as billed_hours,
        coalesce(time_monthly.standard_value, 0) as standard_value,
        coalesce(time_monthly.standard_value_reporting, 0) as standard_value_reporting,
        coalesce(time_monthly.unrated_billable_hours, 0) as unrated_billable_hours,
        coalesce(time_monthly.billed_standard_value, 0) as billed_standard_value,
        coalesce(time_monthly.billed_rated_time_amount, 0) as billed_rated_time_amount,
        coalesce(time_monthly.billed_standard_value_reporting, 0) as billed_standard_value_reporting,
        coalesce(time_monthly.billed_rated_time_amount_reporting, 0) as billed_rated_time_amount_reporting,
        coalesce(time_monthly.billed_time_amount, 0) as billed_time_amount,
        coalesce(time_monthly.billed_time_amount_reporting, 0) as billed_time_amount_reporting,
        coalesce(fees_monthly.billed_fee_amount, 0) as billed_fee_amount,
        coalesce(fees_monthly.billed_fee_amount_reporting, 0) as billed_fee_amount_reporting,
        coalesce(time_monthly.tm_revenue, 0) as tm_revenue,
        coalesce(time_monthly.tm_revenue_reporting, 0) as tm_revenue_reporting
    from time_monthly
    full outer join fees_monthly
        on time_monthly.project_id = fees_monthly.project_id
        and time_monthly.month_start_date = fees_monthly.month_start_date
        and time_monthly.currency_code = fees_monthly.currency_code
),

final as (
    select
        combined.project_id,
        combined.month_start_date,
        projects.client_id,
        projects.contract_id,
        projects.legal_entity,
        projects.practice,
        projects.billing_method,
        combined.currency_code,
        cast(combined.client_hours as decimal(14, 4)) as client_hours,
        cast(combined.billable_hours as decimal(14, 4)) as billable_hours,
        cast(combined.billed_hours as decimal(14, 4)) as billed_hours,
        cast(combined.unrated_billable_hours as decimal(14, 4)) as unrated_billable_hours,
        cast(combined.standard_value as decimal(24, 8)) as standard_value,
        cast(combined.standard_value_reporting as decimal(24, 8)) as standard_value_reporting,
        cast(combined.billed_time_amount as decimal(24, 8)) as billed_time_amount,
        cast(combined.billed_fee_amount as decimal(24, 8)) as billed_fee_amount,
        cast(combined.billed_time_amount + combined.billed_fee_amount as decimal(24, 8)) as billed_amount,
        cast(combined.billed_time_amount_reporting + combined.billed_fee_amount_reporting as decimal(24, 8))
            as billed_amount_reporting,
        case when combined.standard_value != 0
                then {{ double_to_decimal(
                        divide('(combined.billed_time_amount + combined.billed_fee_amount)', 'combined.standard_value'),
                        12, 6
                    ) }}
        end as realization_rate,
        cast(combined.billed_standard_value as decimal(24, 8)) as billed_standard_value,
        cast(combined.billed_standard_value_reporting as decimal(24, 8)) as billed_standard_value_reporting,
        cast(combined.billed_rated_time_amount_reporting as decimal(24, 8))
            as billed_rated_time_amount_reporting,
        case when combined.billed_standard_value != 0
                then {{ double_to_decimal(
                        divide('combined.billed_rated_time_amount', 'combined.billed_standard_value'), 12, 6
                    ) }}
        end
            as billed_time_realization_rate,
        cast(combined.tm_revenue as decimal(24, 8)) as tm_revenue,
        cast(combined.tm_revenue + combined.billed_fee_amount as decimal(24, 8)) as revenue,
        cast(combined.tm_revenue_reporting + combined.billed_fee_amount_reporting as decimal(24, 8))
            as revenue_reporting,
        case when combined.client_hours > 0
                then {{ double_to_decimal(
                        divide('(combined.tm_revenue + combined.billed_fee_amount)', 'combined.client_hours'),
                        18, 4
                    ) }}
        end as effective_bill_rate,
        case when combined.client_hours > 0
                then {{ double_to_decimal(
                        divide(
                            '(combined.tm_revenue_reporting + combined.billed_fee_amount_reporting)',
                            'combined.client_hours'
                        ),
                        18, 4
                    ) }}
        end as effective_bill_rate_reporting
    from combined
    left join projects on combined.project_id = projects.project_id
)

{#- names beside the ids (macro with_names) -#}


{{ with_names('final') }}
