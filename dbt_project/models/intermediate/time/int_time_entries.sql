{#- One row per time entry (current version; deleted entries removed), resolved, rated and linked
    to the ERP line and invoice that carry it, with a hash of every column (row_hash): the
    conformed time entry. fct_time_entries is this table, kept incrementally (it writes only the
    rows that are new or whose row_hash changed); models in intermediate/ read this one, which
    always holds every current entry, i.e. the same rows as the fact after its run.

    Follows change (macros/follow_change.sql): a run recomputes only the entries that are new,
    whose rated row changed (int_time_entries_rated's fingerprint, which covers the resolved
    row), or whose ERP link or blocking exceptions changed; entries deleted since are removed. -#}
{{ follow_change_config('time_entry_id', 'int_time_entries_resolved', 'not is_deleted') }}
{%- set fingerprints = ['fingerprint_rated', 'fingerprint_erp', 'fingerprint_blocking'] -%}
{%- set incremental = follows_change(fingerprints) -%}
{%- set fact_columns = time_entry_fact_columns() -%}
with entries as (
    select * from {{ ref('int_time_entries_resolved') }}
    where not is_deleted
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

inputs as (
    select
        entries.time_entry_id,
        rated.fingerprint as fingerprint_rated,
        {{ fingerprint_of_row(ref('int_time_entries_erp'), 'erp') }} as fingerprint_erp,
        {{ fingerprint_of_row(ref('int_time_entry_blocking_exceptions'), 'blocking') }}
            as fingerprint_blocking
    -- the tables themselves, not the CTEs above: a CTE read twice is materialised whole by DuckDB
    from {{ ref('int_time_entries_resolved') }} as entries
    inner join {{ ref('int_time_entries_rated') }} as rated on entries.time_entry_id = rated.time_entry_id
    left join {{ ref('int_time_entries_erp') }} as erp on entries.time_entry_id = erp.time_entry_id
    left join {{ ref('int_time_entry_blocking_exceptions') }} as blocking
        on entries.time_entry_id = blocking.time_entry_id
    where not entries.is_deleted
),

{% if incremental -%}
changed as (
    {{ changed_keys('inputs', 'time_entry_id', fingerprints) }}
),

{% endif -%}
joined as (
    select
        entries.time_entry_id,
        entries.time_user_id,
        entries.time_project_id,
        entries.project_code as time_project_code,
        entries.task_id,
        entries.task_name,
        entries.employee_id,
        entries.employee_version_id,
        entries.is_known_employee,
        entries.practice,
        entries.grade,
        entries.region,
        entries.rate_role,
        entries.project_id,
        entries.is_known_project,
        entries.is_internal_project,
        entries.client_id,
        entries.contract_id,
        entries.billing_method,
        entries.legal_entity,
        entries.realm_id,
        entries.spent_date,
        entries.hours,
        entries.is_billable,
        entries.approval_status,
        entries.approval_status = 'approved' as is_approved,
        entries.submitted_at,
        entries.approved_at,
        entries.notes,
        rated.rate_card_id,
        rated.matching_rate_count,
        rated.rate_card_version_id,
        rated.standard_bill_rate,
        rated.is_rated_from_invoice,
        rated.bill_rate,
        rated.rate_currency_code as currency_code,
        rated.bill_amount,
        rated.standard_value as standard_amount,
        rated.bill_fx_rate as fx_rate_to_reporting,
        rated.bill_amount_reporting,
        rated.standard_value_reporting as standard_amount_reporting,
        rated.cost_currency_code,
        rated.cost_amount,
        rated.cost_amount_reporting,
        erp.erp_time_activity_key,
        coalesce(erp.erp_time_activity_count, 0) as erp_time_activity_count,
        erp.erp_posted_at,
        erp.erp_hours,
        erp.erp_hourly_rate,
        erp.erp_invoice_key,
        erp.erp_invoice_line_key,
        erp.invoice_number,
        erp.invoice_date,
        erp.invoiced_amount,
        coalesce(erp.is_invoiced, false) as is_invoiced,
        erp.erp_time_activity_key is not null as is_in_erp,
        coalesce(blocking.blocking_exception_count, 0) > 0 as has_blocking_exception,
        blocking.blocking_rule_codes,
        entries.created_at,
        entries.updated_at,
        inputs.fingerprint_rated,
        inputs.fingerprint_erp,
        inputs.fingerprint_blocking
    from entries
    inner join inputs on entries.time_entry_id = inputs.time_entry_id
    inner join rated on entries.time_entry_id = rated.time_entry_id
    left join erp on entries.time_entry_id = erp.time_entry_id
    left join blocking on entries.time_entry_id = blocking.time_entry_id
    {% if incremental -%}
    where entries.time_entry_id in (select time_entry_id from changed)
    {%- endif %}
),

hashed as (
    select
        *,
        {{ row_hash(fact_columns) }} as row_hash,
        {{ code_fingerprint() }} as code_fingerprint
    from joined
),

final as (
    select * from hashed
)

select * from final
