{#- Every time entry that reached the ERP: the QuickBooks TimeActivity that carries it (its
    description starts with `harvest:<time_entry_id>`) and, once invoiced, the invoice line
    linked to that TimeActivity. One row per time entry.
    Several TimeActivities can claim one entry (a line pushed twice, or re-keyed by hand): all
    of them are counted and their hours summed, and one is picked deterministically to stand
    for the entry: an invoiced one before an uninvoiced one, then the latest posted, then the
    highest key. Likewise an activity linked from several invoice lines keeps the line of the
    latest invoice and counts them. -#}
with time_activities as (
    select * from {{ ref('stg_erp__time_activities') }}
    where time_entry_id is not null
),

invoice_lines as (
    select * from {{ ref('stg_erp__invoice_lines') }}
    where erp_time_activity_key is not null
),

invoices as (
    select * from {{ ref('stg_erp__invoices') }}
),

invoice_lines_dated as (
    select
        invoice_lines.erp_time_activity_key,
        invoice_lines.erp_invoice_line_key,
        invoice_lines.erp_invoice_key,
        invoice_lines.quantity as invoiced_hours,
        invoice_lines.unit_price as invoiced_unit_price,
        invoice_lines.amount as invoiced_amount,
        invoices.doc_number as invoice_number,
        invoices.invoice_date,
        invoices.currency_code as invoice_currency_code,
        count(*) over (partition by invoice_lines.erp_time_activity_key) as invoice_line_count,
        row_number() over (
            partition by invoice_lines.erp_time_activity_key
            order by invoices.invoice_date desc, invoice_lines.erp_invoice_line_key desc
        ) as line_rank
    from invoice_lines
    left join invoices on invoice_lines.erp_invoice_key = invoices.erp_invoice_key
),

latest_invoice_line as (
    select * from invoice_lines_dated
    where line_rank = 1
),

activities_invoiced as (
    select
        time_activities.*,
        latest_invoice_line.erp_invoice_line_key,
        latest_invoice_line.erp_invoice_key,
        latest_invoice_line.invoice_number,
        latest_invoice_line.invoice_date,
        latest_invoice_line.invoice_currency_code,
        latest_invoice_line.invoiced_hours,
        latest_invoice_line.invoiced_unit_price,
        latest_invoice_line.invoiced_amount,
        coalesce(latest_invoice_line.invoice_line_count, 0) as invoice_line_count
    from time_activities
    left join latest_invoice_line
        on time_activities.erp_time_activity_key = latest_invoice_line.erp_time_activity_key
),

ranked as (
    select
        *,
        count(*) over (partition by time_entry_id) as erp_time_activity_count,
        sum(hours) over (partition by time_entry_id) as erp_hours_all_activities,
        row_number() over (
            partition by time_entry_id
            order by
                case when erp_invoice_line_key is not null then 0 else 1 end,
                created_at desc,
                erp_time_activity_key desc
        ) as activity_rank
    from activities_invoiced
),

all_keys as (
    select
        time_entry_id,
        {{ dbt.listagg('erp_time_activity_key', "','", 'order by erp_time_activity_key') }}
            as erp_time_activity_keys
    from time_activities
    group by time_entry_id
),

final as (
    select
        ranked.time_entry_id,
        ranked.erp_time_activity_key,
        ranked.realm_id,
        ranked.erp_time_activity_id,
        ranked.erp_employee_id,
        ranked.erp_customer_id,
        ranked.erp_item_id,
        ranked.txn_date as erp_txn_date,
        ranked.billable_status as erp_billable_status,
        ranked.hours as erp_hours,
        ranked.hourly_rate as erp_hourly_rate,
        ranked.created_at as erp_posted_at,
        ranked.updated_at as erp_updated_at,
        ranked.erp_time_activity_count,
        ranked.erp_hours_all_activities,
        all_keys.erp_time_activity_keys,
        ranked.erp_invoice_key,
        ranked.erp_invoice_line_key,
        ranked.invoice_number,
        ranked.invoice_date,
        ranked.invoice_currency_code,
        ranked.invoiced_hours,
        ranked.invoiced_unit_price,
        ranked.invoiced_amount,
        ranked.invoice_line_count,
        ranked.erp_invoice_line_key is not null as is_invoiced
    from ranked
    inner join all_keys on ranked.time_entry_id = all_keys.time_entry_id
    where ranked.activity_rank = 1
)

select * from final
