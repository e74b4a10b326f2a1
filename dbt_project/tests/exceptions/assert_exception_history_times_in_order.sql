{#- An episode is first detected, then last seen, then resolved, never the other way round. -#}
select *
from {{ ref('exception_history') }}
where
    last_seen_at < first_detected_at
    or resolved_at < last_seen_at
