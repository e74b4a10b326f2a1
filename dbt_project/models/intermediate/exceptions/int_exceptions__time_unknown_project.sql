{#- Time booked on a Harvest project whose code matches no PSA project, even after normalising
    (upper case, punctuation and leading zeros of the number dropped: prj-123, PRJ00123 → PRJ123).
    Nobody can say which contract, rate card or client it belongs to, so it cannot be billed. -#}
with entries as (
    select * from {{ ref('int_time_entries_resolved') }}
),

as_of as (
    select * from {{ ref('int_as_of') }}
),

unknown as (
    select entries.*
    from entries
    cross join as_of
    where
        not entries.is_deleted
        and entries.created_at <= as_of.as_of_at
        and not entries.is_known_project
),

final as (
    select
        {{ time_entry_exception(
            'TIME_UNKNOWN_PROJECT',
            "'project code ' || coalesce(unknown.project_code, '(none)') || ' matches no PSA project even after"
                ~ " normalising (as ' || coalesce(unknown.project_code_normalised, '(empty)') || ')'",
            exception_details([
                ['project_code', 'unknown.project_code'],
                ['project_code_normalised', 'unknown.project_code_normalised'],
                ['hours', 'unknown.hours'],
                ['is_billable', 'unknown.is_billable'],
            ]),
            alias='unknown'
        ) }}
    from unknown
)

select * from final
