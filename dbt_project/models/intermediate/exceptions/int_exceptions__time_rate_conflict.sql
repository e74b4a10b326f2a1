{#- Rate-card versions of one card and role whose effective ranges intersect
    (effective_from..effective_to, both inclusive, a null end open): on the shared days two bill
    rates apply and the warehouse never picks one. Every version of an overlapping pair is
    reported; the time entries those days price are held back from billing through
    int_time_entry_blocking_exceptions (int_time_entries_rated counts matching_rate_count > 1). -#}
{%- set far_future = "cast('9999-12-31' as date)" -%}
with versions as (
    select * from {{ ref('stg_psa__rate_card_versions') }}
),

as_of as (
    select * from {{ ref('int_as_of') }}
),

visible_versions as (
    select versions.*
    from versions
    cross join as_of
    where versions.created_at <= as_of.as_of_at
),

pairs as (
    select
        this_version.rate_card_version_id,
        this_version.rate_card_id,
        this_version.role,
        this_version.bill_rate,
        this_version.effective_from,
        this_version.effective_to,
        other_version.rate_card_version_id as other_rate_card_version_id,
        other_version.bill_rate as other_bill_rate
    from visible_versions as this_version
    inner join visible_versions as other_version
        on this_version.rate_card_id = other_version.rate_card_id
        and this_version.role = other_version.role
        and this_version.rate_card_version_id != other_version.rate_card_version_id
        and this_version.effective_from <= coalesce(other_version.effective_to, {{ far_future }})
        and other_version.effective_from <= coalesce(this_version.effective_to, {{ far_future }})
),

by_version as (
    select
        rate_card_version_id,
        rate_card_id,
        role,
        bill_rate,
        effective_from,
        effective_to,
        count(*) as overlapping_version_count,
        {{ dbt.listagg('other_rate_card_version_id', "', '", 'order by other_rate_card_version_id') }}
            as overlapping_version_ids
    from pairs
    group by rate_card_version_id, rate_card_id, role, bill_rate, effective_from, effective_to
),

final as (
    select
        {{ exception_columns(
            'TIME_RATE_CONFLICT', 'rate_card_version', 'by_version.rate_card_version_id', 'psa',
            "'kantata rate_card ' || by_version.rate_card_id || '; rate_card_version ' || by_version.rate_card_version_id",
            "'rate card ' || by_version.rate_card_id || ', role ' || by_version.role || ': version '"
                ~ " || by_version.rate_card_version_id || ' (' || cast(by_version.effective_from as " ~ dbt.type_string() ~ ") || ' to '"
                ~ " || coalesce(cast(by_version.effective_to as " ~ dbt.type_string() ~ "), 'open') || ', rate ' || " ~ display_number('by_version.bill_rate')
                ~ " || ') overlaps version(s) ' || by_version.overlapping_version_ids",
            exception_details([
                ['rate_card_id', 'by_version.rate_card_id'],
                ['role', 'by_version.role'],
                ['bill_rate', 'by_version.bill_rate'],
                ['effective_from', 'by_version.effective_from'],
                ['effective_to', 'by_version.effective_to'],
                ['overlapping_version_ids', 'by_version.overlapping_version_ids'],
            ]),
            'by_version.effective_from'
        ) }}
    from by_version
)

select * from final
