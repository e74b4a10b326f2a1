{#- Everything that can be work in progress (unbilled) at some date, one row per item, with the
    dates that decide, for any as-of date D, whether it was WIP on D (macro wip_as_of):
      time       approved billable time on time-and-materials projects (and on project codes the
                 PSA does not know, whose method is unknown: they show, unpriced, rather than
                 vanish); worked on work_date, approved on wip_from_date, invoiced on the ERP
                 invoice's date; valued at the applied bill rate (fct_time_entries.bill_amount).
                 Billable time on fixed-fee and retainer projects is billed by milestone, percent
                 complete or monthly fee, not by the hour, so it is not WIP here.
      expense    approved billable expenses, at their amount; invoiced on the date of the ERP
                 invoice the time tool names (Harvest invoice id = QuickBooks Invoice Id), else,
                 if the time tool marks it invoiced but the ERP has no such invoice, on the day
                 the time tool last changed it (updated_at).
      milestone  completed milestones, at their amount, WIP from the completion date until the
                 date of the ERP invoice that billed them; a milestone marked completed without
                 a completion date counts from the day the PSA last changed it.
    Time on T&M projects that is billable, not rejected and not (yet) approved is kept too
    (is_at_risk_candidate): the "at risk" figure beside WIP. A rejected entry is neither.
    History comes from the current version of each record: an entry approved and later
    re-opened shows as never approved (the time tool keeps only its latest approval). -#}
with time_entries as (
    select * from {{ ref('int_time_entries') }}
),

expenses as (
    select * from {{ ref('int_expenses') }}
),

milestones as (
    select * from {{ ref('int_milestones') }}
),

invoices as (
    select * from {{ ref('int_invoices') }}
),

projects as (
    select * from {{ ref('int_projects') }}
),

time_items as (
    select
        'time' as item_type,
        cast(time_entry_id as {{ dbt.type_string() }}) as item_id,
        project_id,
        client_id,
        contract_id,
        legal_entity,
        billing_method,
        spent_date as work_date,
        cast(created_at as date) as recorded_date,
        case when approval_status = 'approved' then cast(approved_at as date) end as wip_from_date,
        invoice_date as invoiced_date,
        hours,
        currency_code,
        bill_amount as amount,
        bill_amount_reporting as amount_reporting,
        approval_status = 'approved' as is_wip_candidate,
        approval_status != 'rejected' as is_at_risk_candidate
    from time_entries
    where is_billable
        and not coalesce(is_internal_project, false)
        and coalesce(billing_method, 'unknown') in ('time_and_materials', 'unknown')
        and approval_status != 'rejected'
),

expense_items as (
    select
        'expense' as item_type,
        cast(expenses.expense_id as {{ dbt.type_string() }}) as item_id,
        expenses.project_id,
        expenses.client_id,
        expenses.contract_id,
        expenses.legal_entity,
        expenses.billing_method,
        expenses.spent_date as work_date,
        cast(expenses.created_at as date) as recorded_date,
        cast(expenses.approved_at as date) as wip_from_date,
        case
            when invoices.invoice_date is not null then invoices.invoice_date
            when expenses.is_invoiced then cast(expenses.updated_at as date)
        end as invoiced_date,
        cast(null as decimal(12, 4)) as hours,
        expenses.currency_code,
        cast(expenses.amount as decimal(24, 8)) as amount,
        expenses.amount_reporting,
        true as is_wip_candidate,
        false as is_at_risk_candidate
    from expenses
    left join invoices
        on cast(expenses.harvest_invoice_id as {{ dbt.type_string() }}) = invoices.erp_invoice_id
    where expenses.is_billable
        and expenses.approval_status = 'approved'
),

milestone_items as (
    select
        'milestone' as item_type,
        cast(milestone_id as {{ dbt.type_string() }}) as item_id,
        milestones.project_id,
        milestones.client_id,
        milestones.contract_id,
        milestones.legal_entity,
        projects.billing_method,
        coalesce(milestones.completed_date, cast(milestones.updated_at as date)) as work_date,
        coalesce(milestones.completed_date, cast(milestones.updated_at as date)) as recorded_date,
        coalesce(milestones.completed_date, cast(milestones.updated_at as date)) as wip_from_date,
        milestones.invoice_date as invoiced_date,
        cast(null as decimal(12, 4)) as hours,
        milestones.currency_code,
        cast(milestones.amount as decimal(24, 8)) as amount,
        milestones.amount_reporting,
        true as is_wip_candidate,
        false as is_at_risk_candidate
    from milestones
    left join projects on milestones.project_id = projects.project_id
    where milestones.is_completed
),

unioned as (
    select * from time_items
    union all
    select * from expense_items
    union all
    select * from milestone_items
),

final as (
    select
        unioned.item_type,
        unioned.item_id,
        unioned.project_id,
        unioned.client_id,
        unioned.contract_id,
        unioned.legal_entity,
        projects.practice,
        unioned.billing_method,
        unioned.work_date,
        unioned.recorded_date,
        unioned.wip_from_date,
        unioned.invoiced_date,
        cast(unioned.hours as decimal(12, 4)) as hours,
        unioned.currency_code,
        cast(unioned.amount as decimal(24, 8)) as amount,
        cast(unioned.amount_reporting as decimal(24, 8)) as amount_reporting,
        unioned.is_wip_candidate,
        unioned.is_at_risk_candidate
    from unioned
    left join projects on unioned.project_id = projects.project_id
)

select * from final
