{#- Every ERP invoice line with what it bills: its item, the TimeActivity it is linked to (and
    through that the Harvest time entry, employee and project), and a line kind:
      time             linked to a TimeActivity, or priced by a role item (an item named after a
                       role the PSA rate cards price) without a link
      milestone        the invoice's PrivateNote is `milestone:<story id>`, or the item is the
                       fixed-fee milestone item
      percent_complete PrivateNote `percent_complete:<contract number>` or the progress item
      retainer         PrivateNote `retainer:<contract number>` or the retainer item
      other            anything else (kept, never dropped)
    The link from a milestone line to its PSA milestone is the PrivateNote only: that is the
    documented convention (docs/sandbox.md); line descriptions are free text and not parsed.
    Subtotal lines (QuickBooks SubTotalLineDetail) repeat other lines' amounts and are left out.
    No line in the ERP data carries tax: QuickBooks keeps tax on the invoice (TxnTaxDetail),
    which is not loaded. -#}
with lines as (
    select * from {{ ref('stg_erp__invoice_lines') }}
    where detail_type is null or detail_type != 'SubTotalLineDetail'
),

invoices as (
    select * from {{ ref('stg_erp__invoices') }}
),

items as (
    select * from {{ ref('stg_erp__items') }}
),

time_activities as (
    select * from {{ ref('stg_erp__time_activities') }}
),

project_ids as (
    select * from {{ ref('int_project_source_ids') }}
    where source_system = 'erp'
),

employee_ids as (
    select * from {{ ref('int_employee_source_ids') }}
    where source_system = 'erp'
),

priced_roles as (
    select distinct role from {{ ref('stg_psa__rate_card_versions') }}
),

invoice_notes as (
    select
        erp_invoice_key,
        invoice_date,
        case
            when private_note like 'milestone:%' then 'milestone'
            when private_note like 'percent!_complete:%' escape '!' then 'percent_complete'
            when private_note like 'retainer:%' then 'retainer'
        end as note_kind,
        nullif(trim({{ dbt.split_part('private_note', "':'", 2) }}), '') as note_reference
    from invoices
),

activities as (
    select
        time_activities.erp_time_activity_key,
        time_activities.time_entry_id,
        time_activities.txn_date,
        time_activities.hours,
        time_activities.hourly_rate,
        project_ids.project_id,
        employee_ids.employee_id
    from time_activities
    left join project_ids
        on time_activities.realm_id || ':' || time_activities.erp_customer_id = project_ids.source_id
    left join employee_ids
        on time_activities.realm_id || ':' || time_activities.erp_employee_id = employee_ids.source_id
),

joined as (
    select
        lines.*,
        items.item_name,
        invoice_notes.invoice_date,
        invoice_notes.note_kind,
        invoice_notes.note_reference,
        priced_roles.role is not null as is_role_item,
        activities.erp_time_activity_key is not null as has_time_activity,
        activities.time_entry_id,
        activities.project_id as time_activity_project_id,
        activities.employee_id
    from lines
    left join invoice_notes on lines.erp_invoice_key = invoice_notes.erp_invoice_key
    left join items on lines.realm_id = items.realm_id and lines.erp_item_id = items.erp_item_id
    left join priced_roles on items.item_name = priced_roles.role
    left join activities on lines.erp_time_activity_key = activities.erp_time_activity_key
),

classified as (
    select
        *,
        case
            when erp_time_activity_key is not null then 'time'
            when note_kind = 'milestone' or item_name = 'Fixed Fee - Milestone' then 'milestone'
            when note_kind = 'percent_complete' or item_name = 'Fixed Fee - Progress' then 'percent_complete'
            when note_kind = 'retainer' or item_name = 'Retainer' then 'retainer'
            when is_role_item then 'time'
            else 'other'
        end as line_kind
    from joined
),

final as (
    select
        erp_invoice_line_key,
        erp_invoice_key,
        realm_id,
        erp_invoice_id,
        line_index,
        line_num,
        detail_type,
        line_kind,
        description,
        case when erp_item_id is not null then realm_id || ':' || erp_item_id end as erp_item_key,
        item_name,
        quantity,
        unit_price,
        amount,
        service_date,
        invoice_date,
        linked_txn_type,
        linked_txn_id,
        erp_time_activity_key,
        has_time_activity,
        time_entry_id,
        employee_id,
        time_activity_project_id,
        note_kind,
        case when line_kind = 'milestone' and note_kind = 'milestone' then note_reference end as milestone_id,
        case when note_kind in ('percent_complete', 'retainer') then note_reference end as contract_number
    from classified
)

select * from final
