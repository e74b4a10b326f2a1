{#- Every exception episode with its age and aging bucket: open episodes are aged from first
    detection to the warehouse's now, resolved ones from first detection to resolution. Age is
    whole days elapsed (48 hours = 2 days, 47 hours = 1), bucketed 0-2, 3-7, 8-30 and 30+ (over
    30). Open episodes carry the current reason, source ids, blocking flag and money at stake
    from fct_exceptions; every episode, resolved ones too, carries the record's context
    (business date, project, client, employee, legal entity) from exception_history, current
    for open episodes. business_age_days counts from the record's own date (occurred_on) to
    now (open) or to resolution (resolved). -#}
with history as (
    select * from {{ ref('exception_history') }}
),

current_exceptions as (
    select * from {{ ref('fct_exceptions') }}
),

rules as (
    select * from {{ ref('exception_rules') }}
),

as_of as (
    select * from {{ ref('int_as_of') }}
),

aged as (
    select
        history.*,
        history.resolved_at is null as is_open,
        cast(floor(
            {{ dbt.datediff(
                'history.first_detected_at', 'coalesce(history.resolved_at, as_of.as_of_at)', 'second'
            ) }}
            / 86400.0
        ) as integer) as age_days
    from history
    cross join as_of
),

final as (
    select
        aged.episode_id,
        aged.exception_id,
        aged.rule_code,
        aged.owner,
        aged.severity,
        coalesce(current_exceptions.is_blocking, aged.is_blocking, rules.is_blocking) as is_blocking,
        aged.record_type,
        aged.record_id,
        coalesce(current_exceptions.reason, aged.reason) as reason,
        current_exceptions.source_ids,
        coalesce(current_exceptions.occurred_on, aged.occurred_on) as occurred_on,
        coalesce(current_exceptions.project_id, aged.project_id) as project_id,
        coalesce(current_exceptions.client_id, aged.client_id) as client_id,
        coalesce(current_exceptions.employee_id, aged.employee_id) as employee_id,
        coalesce(current_exceptions.legal_entity, aged.legal_entity) as legal_entity,
        current_exceptions.amount_at_stake_reporting,
        aged.first_detected_at,
        aged.last_seen_at,
        aged.resolved_at,
        aged.is_open,
        aged.age_days,
        {{ dbt.datediff(
            'coalesce(current_exceptions.occurred_on, aged.occurred_on)',
            'cast(coalesce(aged.resolved_at, as_of.as_of_at) as date)',
            'day'
        ) }} as business_age_days,
        case
            when aged.age_days <= 2 then '0-2'
            when aged.age_days <= 7 then '3-7'
            when aged.age_days <= 30 then '8-30'
            else '30+'
        end as age_bucket
    from aged
    left join rules on aged.rule_code = rules.rule_code
    left join current_exceptions
        on aged.exception_id = current_exceptions.exception_id
        and aged.is_open
    cross join as_of
)

select * from final
