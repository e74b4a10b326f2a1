{#- One row per time entry the ERP has invoiced: how long from the day worked, and from the
    approval, to the invoice date. Practice is the project's (the practice that bills the
    work); employee_practice is the person's on the day worked. Days are calendar days.
    days_approved_to_invoice is negative if the ERP invoiced before the time tool's approval
    (kept, not hidden: it says the approval was recorded late). -#}
with time_entries as (
    select * from {{ ref('fct_time_entries') }}
    where is_invoiced
),

projects as (
    select * from {{ ref('dim_projects') }}
),

final as (
    select
        time_entries.time_entry_id,
        time_entries.employee_id,
        time_entries.project_id,
        time_entries.client_id,
        time_entries.contract_id,
        time_entries.legal_entity,
        projects.practice,
        time_entries.practice as employee_practice,
        time_entries.billing_method,
        time_entries.spent_date,
        time_entries.approved_at,
        cast(time_entries.approved_at as date) as approved_date,
        time_entries.invoice_date,
        cast({{ dbt.date_trunc('month', 'time_entries.invoice_date') }} as date) as invoice_month,
        time_entries.erp_invoice_key,
        time_entries.hours,
        time_entries.currency_code,
        time_entries.bill_amount,
        time_entries.bill_amount_reporting,
        {{ dbt.datediff('time_entries.spent_date', 'time_entries.invoice_date', 'day') }}
            as days_worked_to_invoice,
        {{ dbt.datediff('cast(time_entries.approved_at as date)', 'time_entries.invoice_date', 'day') }}
            as days_approved_to_invoice
    from time_entries
    left join projects on time_entries.project_id = projects.project_id
)

{#- names beside the ids (macro with_names) -#}


{{ with_names('final', employee=true) }}
