{#- Approved billable time-and-materials time that never reached the ERP, dated in a month the
    firm has already billed: the hours the time tool approved and the hours the ERP billed for
    that month differ by it (revenue leakage). One exception per time entry, so the owner sees
    exactly which time is missing.

    "A month the firm has billed" is read from the ERP itself: the months of the TimeActivities
    that invoices dated by the warehouse's now have billed, firm-wide (a billing run invoices
    every realm), from the first such month to the last. Before the cutover these are the
    manual billing runs; after it, the live ERP's runs over what the reverse ETL pushed, where
    approved time that was never pushed is the same leak.
    Only time of people HR knows, with hours above zero, counts: other time never goes to the
    ERP and has its own exception. -#}
with entries as (
    select * from {{ ref('int_time_entries_resolved') }}
),

erp_entries as (
    select * from {{ ref('int_time_entries_erp') }}
),

time_activities as (
    select * from {{ ref('stg_erp__time_activities') }}
),

invoice_lines as (
    select * from {{ ref('stg_erp__invoice_lines') }}
),

invoices as (
    select * from {{ ref('stg_erp__invoices') }}
),

as_of as (
    select * from {{ ref('int_as_of') }}
),

billed_time_activities as (
    select
        time_activities.erp_time_activity_key,
        time_activities.txn_date,
        invoices.invoice_date
    from invoice_lines
    inner join invoices on invoice_lines.erp_invoice_key = invoices.erp_invoice_key
    inner join time_activities on invoice_lines.erp_time_activity_key = time_activities.erp_time_activity_key
    cross join as_of
    where invoices.invoice_date <= as_of.as_of_date
),

billed_months as (
    select
        min({{ dbt.date_trunc('month', 'txn_date') }}) as first_billed_month_date,
        max({{ dbt.date_trunc('month', 'txn_date') }}) as last_billed_month_date,
        max(invoice_date) as last_time_invoice_date
    from billed_time_activities
),

approved_time as (
    select entries.*
    from entries
    cross join as_of
    where
        not entries.is_deleted
        and entries.billing_method = 'time_and_materials'
        and entries.is_known_project
        and not entries.is_internal_project
        and entries.is_billable
        and entries.is_known_employee
        and entries.hours > 0
        and entries.approval_status = 'approved'
        and entries.approved_at <= as_of.as_of_at
),

leaked as (
    select
        approved_time.*,
        billed_months.last_billed_month_date,
        billed_months.last_time_invoice_date
    from approved_time
    cross join billed_months
    left join erp_entries on approved_time.time_entry_id = erp_entries.time_entry_id
    where
        erp_entries.time_entry_id is null
        and cast({{ dbt.date_trunc('month', 'approved_time.spent_date') }} as date)
            between cast(billed_months.first_billed_month_date as date)
            and cast(billed_months.last_billed_month_date as date)
),

final as (
    select
        {{ time_entry_exception(
            'RECON_MISMATCH',
            "'approved billable ' || " ~ display_number('leaked.hours') ~ " || ' h of ' || cast(leaked.spent_date as varchar)"
                ~ " || ' never reached the ERP, though ' || left(cast(leaked.spent_date as varchar), 7)"
                ~ " || ' has been billed (time invoiced up to ' || left(cast(leaked.last_billed_month_date as varchar), 7) || ')'",
            exception_details([
                ['hours', 'leaked.hours'],
                ['month', 'left(cast(leaked.spent_date as varchar), 7)'],
                ['approved_at', 'leaked.approved_at'],
                ['last_billed_month', 'left(cast(leaked.last_billed_month_date as varchar), 7)'],
                ['last_time_invoice_date', 'leaked.last_time_invoice_date'],
            ]),
            alias='leaked'
        ) }}
    from leaked
)

select * from final
