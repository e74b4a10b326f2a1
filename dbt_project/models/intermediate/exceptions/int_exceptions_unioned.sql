{#- Every exception rule's rows but RECON_MISMATCH's, unioned (they all yield the columns of the
    macro exception_columns). int_time_entry_blocking_exceptions reads the blocking set from
    here, and RECON_MISMATCH reads that: "approved time not held back by another blocking rule"
    needs the other rules first, so RECON_MISMATCH joins the queue only in fct_exceptions, and
    references flow one way (rules -> this -> blocking set -> RECON_MISMATCH -> fct_exceptions).
    RECON_MISMATCH itself never blocks (the fix is to bill the time). -#}
{%- set rules = [
    'time_unknown_project', 'time_inactive_project', 'time_outside_contract', 'time_unapproved_late',
    'time_no_rate', 'time_rate_conflict', 'time_unknown_employee', 'time_duplicate', 'time_invalid_hours',
    'time_closed_period', 'client_unmapped', 'erp_rejected', 'changed_after_billing',
] -%}
with
{% for rule in rules %}
{{ rule }} as (
    select * from {{ ref('int_exceptions__' ~ rule) }}
),
{% endfor %}

final as (
    {% for rule in rules %}
    select * from {{ rule }}
    {{ "union all" if not loop.last }}
    {% endfor %}
)

select * from final
