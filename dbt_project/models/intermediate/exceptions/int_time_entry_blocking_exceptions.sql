{#- Per time entry, the blocking exceptions that hold it back from billing: its own (unknown
    project, no rate, duplicate, ...), those of its time-tool user (unknown employee), and a
    rate conflict on the versions that would price it. -#}
with exceptions as (
    select * from {{ ref('fct_exceptions') }} where is_blocking
),

entries as (
    select * from {{ ref('int_time_entries_resolved') }} where not is_deleted
),

rated as (
    select * from {{ ref('int_time_entries_rated') }}
),

own as (
    select time_entry_id, rule_code
    from exceptions
    where record_type = 'time_entry'
),

of_user as (
    select entries.time_entry_id, exceptions.rule_code
    from entries
    inner join exceptions
        on exceptions.record_type = 'time_user'
        and exceptions.record_id = cast(entries.time_user_id as varchar)
),

of_rate as (
    select rated.time_entry_id, 'TIME_RATE_CONFLICT' as rule_code
    from rated
    where rated.matching_rate_count > 1
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
