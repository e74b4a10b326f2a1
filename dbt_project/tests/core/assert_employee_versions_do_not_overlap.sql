-- An employee's SCD2 versions must tile time: each version ends exactly where the next begins.
with versions as (
    select
        employee_id,
        valid_from,
        valid_to,
        lead(valid_from) over (partition by employee_id order by valid_from) as next_valid_from
    from {{ ref('dim_employees') }}
)

select *
from versions
where
    (next_valid_from is null and valid_to is not null)
    or (next_valid_from is not null and (valid_to is null or valid_to != next_valid_from))
    or valid_to <= valid_from
