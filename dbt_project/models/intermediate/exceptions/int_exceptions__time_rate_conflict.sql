{#- Rate-card versions of one card and role whose effective ranges intersect: both versions are
    reported (time priced by them is held back, see int_time_entry_blocking_exceptions). -#}
with versions as (
    select * from {{ ref('stg_psa__rate_card_versions') }}
),

pairs as (
    select
        this_version.rate_card_version_id,
        this_version.rate_card_id,
        this_version.role,
        this_version.effective_from,
        other_version.rate_card_version_id as other_version_id,
        other_version.effective_from as other_effective_from,
        other_version.effective_to as other_effective_to
    from versions as this_version
    inner join versions as other_version
        on this_version.rate_card_id = other_version.rate_card_id
        and this_version.role = other_version.role
        and this_version.rate_card_version_id <> other_version.rate_card_version_id
        and this_version.effective_from <= coalesce(other_version.effective_to, cast('9999-12-31' as date))
        and other_version.effective_from <= coalesce(this_version.effective_to, cast('9999-12-31' as date))
),

by_version as (
    select
        rate_card_version_id,
        rate_card_id,
        role,
        effective_from,
        {{ dbt.listagg('other_version_id', "','", 'order by other_version_id') }} as overlapping_version_ids
    from pairs
    group by rate_card_version_id, rate_card_id, role, effective_from
),

final as (
    select
        {{ exception_columns(
            'TIME_RATE_CONFLICT', 'rate_card_version', 'rate_card_version_id', 'psa',
            "'kantata rate_card ' || rate_card_id || '; rate_card_version ' || rate_card_version_id",
            "'rate card ' || rate_card_id || ', role ' || role || ': version ' || rate_card_version_id"
                ~ " || ' overlaps version(s) ' || overlapping_version_ids",
            "'{\"role\": \"' || role || '\", \"overlaps\": \"' || overlapping_version_ids || '\"}'",
            'effective_from'
        ) }}
    from by_version
)

select * from final
