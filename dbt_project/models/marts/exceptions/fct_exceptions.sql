{#- The exception queue: every open exception as of this build (the warehouse's now), one row
    per rule and record, with the owning team, severity and whether it holds the record back
    from billing (seed exception_rules). Each rule is its own model in
    intermediate/exceptions/; they all yield the same columns (macro exception_columns). -#}
{%- set rules = [
    'time_unknown_project', 'time_inactive_project', 'time_outside_contract', 'time_unapproved_late',
    'time_no_rate', 'time_rate_conflict', 'time_unknown_employee', 'time_duplicate', 'time_invalid_hours',
    'time_closed_period', 'client_unmapped', 'erp_rejected', 'changed_after_billing', 'recon_mismatch',
] -%}
with
{% for rule in rules %}
{{ rule }} as (
    select * from {{ ref('int_exceptions__' ~ rule) }}
),
{% endfor %}

rules as (
    select * from {{ ref('exception_rules') }}
),

as_of as (
    select * from {{ ref('int_as_of') }}
),

unioned as (
    {% for rule in rules %}
    select * from {{ rule }}
    {{ "union all" if not loop.last }}
    {% endfor %}
),

-- a left join: a rule code missing from the seed must fail a test, not vanish from the queue
final as (
    select
        unioned.exception_id,
        unioned.rule_code,
        rules.owner,
        rules.severity,
        rules.is_blocking,
        unioned.record_type,
        unioned.record_id,
        unioned.source_system,
        unioned.source_ids,
        unioned.reason,
        rules.reason as rule_reason,
        unioned.details,
        unioned.occurred_on,
        unioned.time_entry_id,
        unioned.project_id,
        unioned.client_id,
        unioned.employee_id,
        unioned.legal_entity,
        as_of.as_of_at as detected_at
    from unioned
    left join rules on unioned.rule_code = rules.rule_code
    cross join as_of
)

select * from final
