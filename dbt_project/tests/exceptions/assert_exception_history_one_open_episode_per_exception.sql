{#- An exception is open in at most one episode: a reappearance opens a new episode only after
    the previous one was resolved. -#}
select
    exception_id,
    count(*) as open_episode_count
from {{ ref('exception_history') }}
where resolved_at is null
group by exception_id
having count(*) > 1
