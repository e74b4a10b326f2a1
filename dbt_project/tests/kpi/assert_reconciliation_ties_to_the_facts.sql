-- rpt_reconciliation counts every approved billable T&M entry, every ERP TimeActivity and every
-- invoiced time line exactly once: its totals equal the facts' totals exactly (hours, money in
-- transaction and reporting currency). A row here names the measure that does not tie.
with reconciliation as (
    select
        sum(approved_hours) as approved_hours,
        sum(approved_amount) as approved_amount,
        sum(approved_amount_reporting) as approved_amount_reporting,
        sum(erp_hours) as erp_hours,
        sum(erp_amount) as erp_amount,
        sum(invoiced_hours) as invoiced_hours,
        sum(invoiced_amount) as invoiced_amount,
        sum(invoiced_amount_reporting) as invoiced_amount_reporting
    from {{ ref('rpt_reconciliation') }}
),

approved as (
    select
        coalesce(sum(entries.hours), 0) as approved_hours,
        coalesce(sum(coalesce(entries.bill_amount, 0)), 0) as approved_amount,
        coalesce(sum(coalesce(entries.bill_amount_reporting, 0)), 0) as approved_amount_reporting
    from {{ ref('fct_time_entries') }} as entries
    cross join {{ ref('int_as_of') }} as as_of
    where
        entries.is_billable
        and entries.is_approved
        and entries.billing_method = 'time_and_materials'
        and entries.approved_at <= as_of.as_of_at
),

erp as (
    select
        coalesce(sum(hours), 0) as erp_hours,
        coalesce(sum(hours * hourly_rate), 0) as erp_amount
    from {{ ref('stg_erp__time_activities') }}
),

invoiced as (
    select
        coalesce(sum(quantity), 0) as invoiced_hours,
        coalesce(sum(amount), 0) as invoiced_amount,
        coalesce(sum(amount_reporting), 0) as invoiced_amount_reporting
    from {{ ref('fct_invoice_lines') }}
    where line_kind = 'time'
),

compared as (
    select
        'approved_hours' as measure,
        reconciliation.approved_hours as in_mart,
        approved.approved_hours as in_facts
    from reconciliation cross join approved
    union all
    select
        'approved_amount',
        reconciliation.approved_amount,
        approved.approved_amount
    from reconciliation cross join approved
    union all
    select
        'approved_amount_reporting',
        reconciliation.approved_amount_reporting,
        approved.approved_amount_reporting
    from reconciliation cross join approved
    union all
    select
        'erp_hours',
        reconciliation.erp_hours,
        erp.erp_hours
    from reconciliation cross join erp
    union all
    select
        'erp_amount',
        reconciliation.erp_amount,
        erp.erp_amount
    from reconciliation cross join erp
    union all
    select
        'invoiced_hours',
        reconciliation.invoiced_hours,
        invoiced.invoiced_hours
    from reconciliation cross join invoiced
    union all
    select
        'invoiced_amount',
        reconciliation.invoiced_amount,
        invoiced.invoiced_amount
    from reconciliation cross join invoiced
    union all
    select
        'invoiced_amount_reporting',
        reconciliation.invoiced_amount_reporting,
        invoiced.invoiced_amount_reporting
    from reconciliation cross join invoiced
)

select *
from compared
where coalesce(in_mart, 0) != coalesce(in_facts, 0)
