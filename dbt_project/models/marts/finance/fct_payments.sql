{#- One row per payment line applied to a transaction (normally an invoice), plus one row per
    payment for the part of its total no line applies (unapplied cash, is_unapplied; key
    `<payment key>:unapplied`). Amounts in the payment's currency and in the reporting currency
    at the ERP's rate for the payment date; days from the invoice date and from the due date
    (negative = paid before it was due). -#}
with payments as (
    select * from {{ ref('stg_erp__payments') }}
),

payment_lines as (
    select * from {{ ref('stg_erp__payment_lines') }}
),

invoices as (
    select * from {{ ref('int_erp_invoices_resolved') }}
),

customers as (
    select * from {{ ref('stg_erp__customers') }}
),

client_ids as (
    select * from {{ ref('int_client_source_ids') }}
    where source_system = 'erp'
),

legal_entities as (
    select * from {{ ref('stg_firm__legal_entities') }}
),

fx_rates as (
    select * from {{ ref('int_fx_rates_daily') }}
),

applied as (
    select
        payment_lines.erp_payment_line_key,
        payment_lines.erp_payment_key,
        payment_lines.line_index,
        payment_lines.linked_txn_type,
        payment_lines.erp_invoice_key,
        payment_lines.amount,
        false as is_unapplied
    from payment_lines
),

unapplied as (
    select
        payments.erp_payment_key || ':unapplied' as erp_payment_line_key,
        payments.erp_payment_key,
        cast(null as bigint) as line_index,
        cast(null as {{ dbt.type_string() }}) as linked_txn_type,
        cast(null as {{ dbt.type_string() }}) as erp_invoice_key,
        payments.total_amount - coalesce(sum(payment_lines.amount), 0) as amount,
        true as is_unapplied
    from payments
    left join payment_lines on payments.erp_payment_key = payment_lines.erp_payment_key
    group by payments.erp_payment_key, payments.total_amount
    having payments.total_amount - coalesce(sum(payment_lines.amount), 0) != 0
),

all_lines as (
    select * from applied
    union all
    select * from unapplied
),

-- the payer's client: the invoice's when the line applies to one, else the paying customer's
-- (its parent's when it is a job)
payers as (
    select
        payments.erp_payment_key,
        client_ids.client_id
    from payments
    left join customers
        on payments.realm_id = customers.realm_id
        and payments.erp_customer_id = customers.erp_customer_id
    left join client_ids
        on client_ids.source_id = payments.realm_id || ':' || case
            when customers.is_job then customers.parent_erp_customer_id
            else payments.erp_customer_id
        end
),

final as (
    select
        all_lines.erp_payment_line_key,
        all_lines.erp_payment_key,
        payments.realm_id,
        payments.erp_payment_id,
        legal_entities.legal_entity,
        payments.payment_date,
        payments.realm_id || ':' || payments.erp_customer_id as erp_customer_key,
        coalesce(invoices.client_id, payers.client_id) as client_id,
        invoices.project_id,
        all_lines.line_index,
        all_lines.linked_txn_type,
        all_lines.erp_invoice_key,
        all_lines.is_unapplied,
        invoices.invoice_date,
        invoices.due_date,
        payments.currency_code,
        all_lines.amount,
        fx_rates.rate_to_reporting as fx_rate_to_reporting,
        cast(all_lines.amount * fx_rates.rate_to_reporting as decimal(24, 8)) as amount_reporting,
        payments.total_amount as payment_total_amount,
        {{ dbt.datediff('invoices.invoice_date', 'payments.payment_date', 'day') }} as days_from_invoice_date,
        {{ dbt.datediff('invoices.due_date', 'payments.payment_date', 'day') }} as days_from_due_date,
        payments.created_at,
        payments.updated_at
    from all_lines
    inner join payments on all_lines.erp_payment_key = payments.erp_payment_key
    left join invoices on all_lines.erp_invoice_key = invoices.erp_invoice_key
    left join payers on all_lines.erp_payment_key = payers.erp_payment_key
    left join legal_entities on payments.realm_id = legal_entities.erp_realm_id
    left join fx_rates
        on payments.currency_code = fx_rates.currency_code
        and payments.payment_date = fx_rates.rate_date
)

select * from final
