{#- Per owning team, what its open exceptions hold at stake now: how many, how many block, and
    their money in the reporting currency (fct_exceptions.amount_at_stake_reporting), in all
    and for the blocking ones only; exceptions no amount values are counted apart, so a total
    never looks complete when it is not. -#}
with exceptions as (
    select * from {{ ref('fct_exceptions') }}
),

rules as (
    select distinct owner from {{ ref('exception_rules') }}
),

by_owner as (
    select
        owner,
        count(*) as open_exception_count,
        sum(case when is_blocking then 1 else 0 end) as blocking_exception_count,
        sum(case when amount_at_stake_reporting is null then 1 else 0 end) as unvalued_exception_count,
        sum(coalesce(amount_at_stake_reporting, 0)) as amount_at_stake_reporting,
        sum(case when is_blocking then coalesce(amount_at_stake_reporting, 0) else 0 end)
            as blocking_amount_at_stake_reporting,
        min(occurred_on) as oldest_occurred_on
    from exceptions
    group by owner
),

-- every team, with zeros where it has nothing open
final as (
    select
        rules.owner,
        coalesce(by_owner.open_exception_count, 0) as open_exception_count,
        coalesce(by_owner.blocking_exception_count, 0) as blocking_exception_count,
        coalesce(by_owner.unvalued_exception_count, 0) as unvalued_exception_count,
        cast(coalesce(by_owner.amount_at_stake_reporting, 0) as decimal(24, 8)) as amount_at_stake_reporting,
        cast(coalesce(by_owner.blocking_amount_at_stake_reporting, 0) as decimal(24, 8))
            as blocking_amount_at_stake_reporting,
        by_owner.oldest_occurred_on
    from rules
    left join by_owner on rules.owner = by_owner.owner
)

select * from final
