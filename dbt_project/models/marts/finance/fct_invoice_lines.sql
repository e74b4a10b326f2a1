{#- One row per ERP invoice line (subtotal lines excluded, see int_erp_invoice_lines_classified):
    what it bills (line kind, item, the TimeActivity and Harvest time entry behind it, the PSA
    milestone), for which project, contract and client, and its amount in transaction currency
    and in the reporting currency at the invoice date's rate, the same rate as its invoice so
    lines add up to the invoice in both currencies. -#}
with lines as (
    select * from {{ ref('int_erp_invoice_lines_classified') }}
),

invoices as (
    select * from {{ ref('int_erp_invoices_resolved') }}
),

projects as (
    select * from {{ ref('dim_projects') }}
),

fx_rates as (
    select * from {{ ref('int_fx_rates_daily') }}
),

attributed as (
    select
        lines.*,
        invoices.legal_entity,
        invoices.currency_code,
        invoices.client_id,
        coalesce(lines.time_activity_project_id, invoices.project_id) as project_id
    from lines
    inner join invoices on lines.erp_invoice_key = invoices.erp_invoice_key
),

final as (
    select
        attributed.erp_invoice_line_key,
        attributed.erp_invoice_key,
        attributed.realm_id,
        attributed.legal_entity,
        attributed.line_num,
        attributed.line_kind,
        attributed.description,
        attributed.erp_item_key,
        attributed.item_name,
        attributed.quantity,
        attributed.unit_price,
        attributed.currency_code,
        attributed.amount,
        fx_rates.rate_to_reporting as fx_rate_to_reporting,
        cast(attributed.amount * fx_rates.rate_to_reporting as decimal(24, 8)) as amount_reporting,
        attributed.service_date,
        attributed.invoice_date,
        attributed.linked_txn_type,
        attributed.erp_time_activity_key,
        attributed.time_entry_id,
        attributed.employee_id,
        attributed.project_id,
        projects.contract_id,
        attributed.client_id,
        attributed.milestone_id,
        attributed.contract_number
    from attributed
    left join projects on attributed.project_id = projects.project_id
    left join fx_rates
        on attributed.currency_code = fx_rates.currency_code
        and attributed.invoice_date = fx_rates.rate_date
)

select * from final
