{#- One row per time entry (current version; deleted entries removed), fully resolved and priced.
    Incremental: each run re-merges the entries changed at the source within the lookback window
    (var incremental_lookback_days, for late and corrected records) and every entry whose
    derived values changed for any other reason (a rate amendment, an identity fix, an invoice):
    the row hash of what this model would write is compared with what it holds. So an
    incremental run and a full refresh give the same table (tested). -#}
{{
    config(
        materialized='incremental',
        unique_key='time_entry_id',
        incremental_strategy='delete+insert',
        on_schema_change='sync_all_columns',
        post_hook=[
            "delete from {{ this }} where time_entry_id not in (select time_entry_id from {{ ref('stg_time__time_entries') }} where not is_deleted)"
        ],
    )
}}
{%- set hashed_columns = [
    'employee_id', 'employee_version_id', 'project_id', 'client_id', 'contract_id', 'legal_entity',
    'realm_id', 'practice', 'grade', 'region', 'rate_role', 'billing_method', 'is_internal_project',
    'is_known_project', 'is_known_employee', 'task_name', 'spent_date', 'hours', 'is_billable',
    'approval_status', 'submitted_at', 'approved_at', 'notes', 'rate_card_id', 'rate_card_version_id',
    'matching_rate_count', 'standard_bill_rate', 'bill_rate', 'is_rated_from_invoice', 'currency_code',
    'fx_rate_to_reporting', 'cost_amount', 'cost_currency_code', 'cost_amount_reporting',
    'erp_time_activity_key', 'erp_posted_at', 'erp_hours', 'erp_invoice_key', 'erp_invoice_line_key',
    'invoice_number', 'invoice_date', 'has_blocking_exception', 'blocking_rule_codes', 'time_user_id',
    'time_project_id', 'time_project_code', 'task_id', 'created_at', 'updated_at',
] -%}
with entries as (
    select * from {{ ref('int_time_entries_resolved') }} where not is_deleted
),

rated as (
    select * from {{ ref('int_time_entries_rated') }}
),

erp as (
    select * from {{ ref('int_time_entries_erp') }}
),

blocking as (
    select * from {{ ref('int_time_entry_blocking_exceptions') }}
),

joined as (
    select
        entries.time_entry_id,
        entries.employee_id,
        entries.employee_version_id,
        entries.project_id,
        entries.client_id,
        entries.contract_id,
        entries.legal_entity,
        entries.realm_id,
        entries.practice,
        entries.grade,
        entries.region,
        entries.rate_role,
        entries.billing_method,
        entries.is_internal_project,
        entries.is_known_project,
        entries.is_known_employee,
        entries.task_name,
        entries.spent_date,
        entries.hours,
        entries.is_billable,
        entries.approval_status,
        entries.approval_status = 'approved' as is_approved,
        entries.submitted_at,
        entries.approved_at,
        entries.notes,
        rated.rate_card_id,
        rated.rate_card_version_id,
        rated.matching_rate_count,
        rated.standard_bill_rate,
        rated.bill_rate,
        rated.is_rated_from_invoice,
        rated.currency_code,
        rated.bill_amount,
        rated.standard_amount,
        rated.fx_rate_to_reporting,
        rated.bill_amount_reporting,
        rated.standard_amount_reporting,
        rated.cost_amount,
        rated.cost_currency_code,
        rated.cost_amount_reporting,
        erp.erp_time_activity_key,
        erp.erp_posted_at,
        erp.erp_hours,
        erp.erp_invoice_key,
        erp.erp_invoice_line_key,
        erp.invoice_number,
        erp.invoice_date,
        coalesce(erp.is_invoiced, false) as is_invoiced,
        erp.erp_time_activity_key is not null as is_in_erp,
        coalesce(blocking.blocking_exception_count, 0) > 0 as has_blocking_exception,
        blocking.blocking_rule_codes,
        entries.time_user_id,
        entries.time_project_id,
        entries.project_code as time_project_code,
        entries.task_id,
        entries.created_at,
        entries.updated_at
    from entries
    inner join rated on entries.time_entry_id = rated.time_entry_id
    left join erp on entries.time_entry_id = erp.time_entry_id
    left join blocking on entries.time_entry_id = blocking.time_entry_id
),

hashed as (
    select
        *,
        {{ row_hash(hashed_columns) }} as row_hash
    from joined
),

final as (
    select hashed.*
    from hashed
    {% if is_incremental() %}
    left join {{ this }} as existing on hashed.time_entry_id = existing.time_entry_id
    where
        existing.time_entry_id is null
        or existing.row_hash <> hashed.row_hash
        or hashed.updated_at >= (
            select {{ dbt.dateadd('day', -var('incremental_lookback_days'), 'max(updated_at)') }} from {{ this }}
        )
    {% endif %}
)

select * from final
