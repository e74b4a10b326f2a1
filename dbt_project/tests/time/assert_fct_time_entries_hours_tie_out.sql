{#- Tie-out: the fact holds every time entry the time tool still has, once, with its hours -
    the row count and the sum of hours equal those of the non-deleted staged entries. -#}
with fact as (
    select
        count(*) as entry_count,
        coalesce(sum(hours), 0) as total_hours
    from {{ ref('fct_time_entries') }}
),

source as (
    select
        count(*) as entry_count,
        coalesce(sum(hours), 0) as total_hours
    from {{ ref('stg_time__time_entries') }}
    where not is_deleted
)

select
    fact.entry_count as fact_entry_count,
    source.entry_count as source_entry_count,
    fact.total_hours as fact_hours,
    source.total_hours as source_hours
from fact
cross join source
where fact.entry_count != source.entry_count or fact.total_hours != source.total_hours
