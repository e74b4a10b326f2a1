{#- Every ERP invoice with the real client and project it bills. An invoice is addressed to a
    customer: a job (sub-customer = a project) or a client customer. For a job, the project is
    the job's (int_project_source_ids) and the client is the job's parent customer's
    (int_client_source_ids); for a client customer, the client is its own and the project is
    the one project all its lines' TimeActivities point to, if there is exactly one. The legal
    entity is the realm's (stg_firm__legal_entities); the billing document kind comes from the
    PrivateNote convention (`milestone:`, `percent_complete:`, `retainer:`); without a note it is
    `time` when every line bills time, else `other`. -#}
with invoices as (
    select * from {{ ref('stg_erp__invoices') }}
),

customers as (
    select * from {{ ref('stg_erp__customers') }}
),

client_ids as (
    select * from {{ ref('int_client_source_ids') }}
    where source_system = 'erp'
),

project_ids as (
    select * from {{ ref('int_project_source_ids') }}
    where source_system = 'erp'
),

legal_entities as (
    select * from {{ ref('stg_firm__legal_entities') }}
),

lines as (
    select * from {{ ref('int_erp_invoice_lines_classified') }}
),

line_summary as (
    select
        erp_invoice_key,
        count(*) as line_count,
        sum(case when line_kind = 'time' then 1 else 0 end) as time_line_count,
        sum(amount) as lines_amount,
        count(distinct time_activity_project_id) as time_activity_project_count,
        min(time_activity_project_id) as time_activity_project_id
    from lines
    group by erp_invoice_key
),

addressed as (
    select
        invoices.*,
        invoices.realm_id || ':' || invoices.erp_customer_id as erp_customer_key,
        customers.customer_name as erp_customer_name,
        coalesce(customers.is_job, false) as is_job_customer,
        case
            when customers.is_job then invoices.realm_id || ':' || customers.parent_erp_customer_id
            else invoices.realm_id || ':' || invoices.erp_customer_id
        end as erp_client_customer_key
    from invoices
    left join customers
        on invoices.realm_id = customers.realm_id
        and invoices.erp_customer_id = customers.erp_customer_id
),

final as (
    select
        addressed.erp_invoice_key,
        addressed.realm_id,
        addressed.erp_invoice_id,
        legal_entities.legal_entity,
        legal_entities.functional_currency,
        addressed.doc_number,
        addressed.invoice_date,
        addressed.due_date,
        addressed.erp_customer_key,
        addressed.erp_customer_name,
        addressed.is_job_customer,
        addressed.erp_client_customer_key,
        client_ids.client_id,
        client_ids.match_method as client_match_method,
        coalesce(
            job_projects.project_id,
            case
                when line_summary.time_activity_project_count = 1 then line_summary.time_activity_project_id
            end
        ) as project_id,
        case
            when addressed.private_note like 'milestone:%' then 'milestone'
            when addressed.private_note like 'percent!_complete:%' escape '!' then 'percent_complete'
            when addressed.private_note like 'retainer:%' then 'retainer'
            when
                line_summary.line_count > 0 and line_summary.time_line_count = line_summary.line_count
                then 'time'
            else 'other'
        end as billing_kind,
        addressed.private_note,
        addressed.currency_code,
        addressed.exchange_rate as erp_exchange_rate,
        addressed.total_amount,
        addressed.balance,
        coalesce(line_summary.line_count, 0) as line_count,
        coalesce(line_summary.lines_amount, 0) as lines_amount,
        addressed.created_at,
        addressed.updated_at
    from addressed
    left join legal_entities on addressed.realm_id = legal_entities.erp_realm_id
    left join client_ids on addressed.erp_client_customer_key = client_ids.source_id
    left join project_ids as job_projects
        on addressed.is_job_customer and addressed.erp_customer_key = job_projects.source_id
    left join line_summary on addressed.erp_invoice_key = line_summary.erp_invoice_key
)

select * from final
