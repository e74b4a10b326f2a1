{#- One row per PSA milestone (story of type milestone): its project, contract and client, its
    amount in its own currency and in the reporting currency, dates, state, and the ERP invoice
    line that billed it. The link is the invoice's PrivateNote `milestone:<story id>` (the
    firm's documented convention, see docs/sandbox.md), reliable for every milestone invoice in
    the ERP history; a milestone invoice written without that note cannot be linked and shows
    as not invoiced. When several lines reference one milestone, the first (earliest invoice,
    then line) is the billing line and invoiced_amount sums them all.
    The reporting amount uses the ERP's rate on the completion date when completed (when the
    revenue is recognised), else on the due date (a future date carries the latest quote
    forward, see int_fx_rates_daily). -#}
with milestones as (
    select * from {{ ref('stg_psa__milestones') }}
    where story_type = 'milestone'
),

project_ids as (
    select * from {{ ref('int_project_source_ids') }}
    where source_system = 'psa'
),

projects as (
    select * from {{ ref('int_projects') }}
),

invoice_lines as (
    select * from {{ ref('int_erp_invoice_lines_classified') }}
    where milestone_id is not null
),

fx_rates as (
    select * from {{ ref('int_fx_rates_daily') }}
),

as_of as (
    select * from {{ ref('int_as_of') }}
),

ranked_lines as (
    select
        milestone_id,
        erp_invoice_line_key,
        erp_invoice_key,
        invoice_date,
        amount,
        row_number() over (
            partition by milestone_id order by invoice_date, erp_invoice_key, line_index
        ) as billing_rank
    from invoice_lines
),

billed as (
    select
        milestone_id,
        count(*) as invoice_line_count,
        sum(amount) as invoiced_amount
    from ranked_lines
    group by milestone_id
),

first_billing as (
    select * from ranked_lines
    where billing_rank = 1
),

final as (
    select
        milestones.milestone_id,
        milestones.milestone_name,
        project_ids.project_id,
        projects.contract_id,
        projects.client_id,
        projects.legal_entity,
        milestones.currency_code,
        milestones.amount,
        fx_rates.rate_to_reporting as fx_rate_to_reporting,
        cast(milestones.amount * fx_rates.rate_to_reporting as decimal(24, 8)) as amount_reporting,
        milestones.due_date,
        milestones.completed_date,
        milestones.milestone_state,
        milestones.milestone_state in ('completed', 'accepted') or milestones.completed_date is not null
            as is_completed,
        milestones.completed_date is null and milestones.due_date < as_of.as_of_date as is_overdue,
        first_billing.erp_invoice_line_key,
        first_billing.erp_invoice_key,
        first_billing.invoice_date,
        first_billing.erp_invoice_line_key is not null as is_invoiced,
        coalesce(billed.invoice_line_count, 0) as invoice_line_count,
        billed.invoiced_amount,
        milestones.created_at,
        milestones.updated_at
    from milestones
    cross join as_of
    left join project_ids on milestones.psa_project_id = project_ids.source_id
    left join projects on project_ids.project_id = projects.project_id
    left join first_billing on milestones.milestone_id = first_billing.milestone_id
    left join billed on milestones.milestone_id = billed.milestone_id
    left join fx_rates
        on milestones.currency_code = fx_rates.currency_code
        and coalesce(milestones.completed_date, milestones.due_date) = fx_rates.rate_date
)

select * from final
