{#- Every blocking exception on a time entry holds that entry back from billing: it is in
    int_time_entry_blocking_exceptions with the rule named (fct_time_entries reads it). -#}
with blocking as (
    select * from {{ ref('fct_exceptions') }}
    where is_blocking and time_entry_id is not null
),

held as (
    select * from {{ ref('int_time_entry_blocking_exceptions') }}
)

select
    blocking.rule_code,
    blocking.time_entry_id
from blocking
left join held on blocking.time_entry_id = held.time_entry_id
where
    held.time_entry_id is null
    or held.blocking_rule_codes not like '%' || blocking.rule_code || '%'
