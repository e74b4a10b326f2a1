{#- One row per ERP invoice (key `<realm>:<Id>`): who and what it bills, its total and open
    balance in transaction currency and in the reporting currency at the ERP's rate for the
    invoice date (int_fx_rates_daily), what has been paid against it, and how overdue it is as
    of the warehouse's "now" (int_as_of). Reporting amounts are exact (decimal(24, 8)), not
    rounded to cents, like every converted amount in the warehouse. -#}
with invoices as (
    select * from {{ ref('int_erp_invoices_resolved') }}
),

payment_lines as (
    select * from {{ ref('stg_erp__payment_lines') }}
    where erp_invoice_key is not null
),

fx_rates as (
    select * from {{ ref('int_fx_rates_daily') }}
),

as_of as (
    select * from {{ ref('int_as_of') }}
),

payments_by_invoice as (
    select
        erp_invoice_key,
        count(*) as payment_count,
        sum(amount) as paid_amount
    from payment_lines
    group by erp_invoice_key
),

final as (
    select
        invoices.erp_invoice_key,
        invoices.realm_id,
        invoices.erp_invoice_id,
        invoices.legal_entity,
        invoices.doc_number,
        invoices.erp_customer_key,
        invoices.is_job_customer,
        invoices.erp_client_customer_key,
        invoices.client_id,
        invoices.project_id,
        invoices.billing_kind,
        invoices.private_note,
        invoices.invoice_date,
        invoices.due_date,
        invoices.currency_code,
        fx_rates.rate_to_reporting as fx_rate_to_reporting,
        invoices.total_amount,
        cast(invoices.total_amount * fx_rates.rate_to_reporting as decimal(24, 8)) as total_amount_reporting,
        invoices.balance,
        cast(invoices.balance * fx_rates.rate_to_reporting as decimal(24, 8)) as balance_reporting,
        cast(coalesce(payments_by_invoice.paid_amount, 0) as decimal(18, 2)) as paid_amount,
        cast(coalesce(payments_by_invoice.paid_amount, 0) * fx_rates.rate_to_reporting as decimal(24, 8))
            as paid_amount_reporting,
        coalesce(payments_by_invoice.payment_count, 0) as payment_count,
        invoices.balance <= 0 as is_paid,
        invoices.balance > 0 and invoices.due_date < as_of.as_of_date as is_overdue,
        case
            when invoices.balance > 0 and invoices.due_date < as_of.as_of_date
                then {{ dbt.datediff('invoices.due_date', 'as_of.as_of_date', 'day') }}
            else 0
        end as days_overdue,
        invoices.line_count,
        invoices.lines_amount,
        invoices.created_at,
        invoices.updated_at
    from invoices
    cross join as_of
    left join payments_by_invoice on invoices.erp_invoice_key = payments_by_invoice.erp_invoice_key
    left join fx_rates
        on invoices.currency_code = fx_rates.currency_code
        and invoices.invoice_date = fx_rates.rate_date
)

select * from final
