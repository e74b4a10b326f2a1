{#- Per time entry, the blocking exceptions that hold it back from billing: its own (unknown
    project, no rate, duplicate, ...), those of its time-tool user (unknown employee), and a rate
    conflict on the rate-card versions that would price it (reported on the versions, so the
    entries are found here through int_time_entries_rated). One row per held-back entry;
    fct_time_entries sets has_blocking_exception from it.

    A row blocks when its rule blocks (seed exception_rules.is_blocking) and the row itself does
    (is_record_blocking: TIME_NO_RATE only on time and materials). The rows come from
    int_exceptions_unioned, every rule but RECON_MISMATCH, which reads this model (and never
    blocks), not from the mart fct_exceptions. -#}
with exceptions as (
    select * from {{ ref('int_exceptions_unioned') }}
),

entries as (
    -- only the columns read: the CTE is read twice, and DuckDB materialises such a CTE whole
    select
        time_entry_id,
        time_user_id,
        is_deleted
    from {{ ref('int_time_entries_resolved') }}
),

rated as (
    select * from {{ ref('int_time_entries_rated') }}
),

rules as (
    select * from {{ ref('exception_rules') }}
),

blocking as (
    select exceptions.*
    from exceptions
    inner join rules on exceptions.rule_code = rules.rule_code
    where rules.is_blocking and exceptions.is_record_blocking
),

own as (
    select
        blocking.time_entry_id,
        blocking.rule_code
    from blocking
    where blocking.record_type = 'time_entry'
),

of_user as (
    select
        entries.time_entry_id,
        blocking.rule_code
    from entries
    inner join blocking
        on blocking.record_type = 'time_user'
        and blocking.record_id = cast(entries.time_user_id as {{ dbt.type_string() }})
    where not entries.is_deleted
),

of_rate as (
    select
        rated.time_entry_id,
        rules.rule_code
    from rated
    inner join entries on rated.time_entry_id = entries.time_entry_id
    inner join rules on rules.rule_code = 'TIME_RATE_CONFLICT'
    where not entries.is_deleted and rated.matching_rate_count > 1 and rules.is_blocking
),

all_blocks as (
    select * from own
    union
    select * from of_user
    union
    select * from of_rate
),

final as (
    select
        time_entry_id,
        count(*) as blocking_exception_count,
        {{ dbt.listagg('rule_code', "','", 'order by rule_code') }} as blocking_rule_codes
    from all_blocks
    group by time_entry_id
)

select * from final
