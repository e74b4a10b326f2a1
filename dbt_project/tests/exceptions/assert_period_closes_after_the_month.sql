{#- A month closes after it ends, and a closed month has a close moment and where it came from. -#}
select *
from {{ ref('int_period_closes') }}
where
    (is_closed and (closed_at is null or closed_at_source is null))
    or closed_at < cast({{ dbt.dateadd('day', 1, 'month_end_date') }} as timestamp)
    or policy_closed_at < cast({{ dbt.dateadd('day', 1, 'month_end_date') }} as timestamp)
