{#- The columns of fct_time_entries but its key and row_hash (which covers them all): what
    int_time_entries computes and the fact keeps. -#}
{% macro time_entry_fact_columns() -%}
{{ return([
    'time_user_id', 'time_project_id', 'time_project_code', 'task_id', 'task_name',
    'employee_id', 'employee_version_id', 'is_known_employee', 'practice', 'grade', 'region', 'rate_role',
    'project_id', 'is_known_project', 'is_internal_project', 'client_id', 'contract_id', 'billing_method',
    'legal_entity', 'realm_id',
    'spent_date', 'hours', 'is_billable', 'approval_status', 'is_approved', 'submitted_at', 'approved_at', 'notes',
    'rate_card_id', 'matching_rate_count', 'rate_card_version_id', 'standard_bill_rate',
    'is_rated_from_invoice', 'bill_rate', 'currency_code', 'bill_amount', 'standard_amount',
    'fx_rate_to_reporting', 'bill_amount_reporting', 'standard_amount_reporting',
    'cost_currency_code', 'cost_amount', 'cost_amount_reporting',
    'erp_time_activity_key', 'erp_time_activity_count', 'erp_posted_at', 'erp_hours', 'erp_hourly_rate',
    'erp_invoice_key', 'erp_invoice_line_key', 'invoice_number', 'invoice_date', 'invoiced_amount',
    'is_invoiced', 'is_in_erp',
    'has_blocking_exception', 'blocking_rule_codes',
    'created_at', 'updated_at',
]) }}
{%- endmacro %}
