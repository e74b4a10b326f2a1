{#- Billable time not yet approved when the fifth working day after the day worked has ended
    (24:00 UTC of that day), counted in the calendar of the person's legal entity on the day
    worked (weekdays minus its public holidays; the project's legal entity for a person HR does
    not know). Measured against the warehouse's now (int_as_of), never the build's clock.
    Not blocking: the entry is simply not billable until approved. -#}
with entries as (
    select * from {{ ref('int_time_entries_resolved') }}
),

working_days as (
    select * from {{ ref('int_legal_entity_working_days') }}
),

as_of as (
    select * from {{ ref('int_as_of') }}
),

unapproved as (
    select entries.*
    from entries
    cross join as_of
    where
        not entries.is_deleted
        and entries.created_at <= as_of.as_of_at
        and entries.is_billable
        and entries.approval_status != 'approved'
),

-- the day worked's running working-day number (a weekend or holiday carries the number of the
-- working day before it), so the fifth working day after it is number + 5
deadlines as (
    select
        unapproved.*,
        deadline_day.date_day as approval_due_date,
        cast({{ dbt.dateadd('day', 1, 'deadline_day.date_day') }} as timestamp) as approval_due_at
    from unapproved
    inner join working_days as worked
        on coalesce(unapproved.employee_legal_entity, unapproved.legal_entity) = worked.legal_entity
        and unapproved.spent_date = worked.date_day
    inner join working_days as deadline_day
        on worked.legal_entity = deadline_day.legal_entity
        and deadline_day.working_day_number = worked.working_day_number + 5
        and deadline_day.is_working_day
),

late as (
    select deadlines.*
    from deadlines
    cross join as_of
    where deadlines.approval_due_at <= as_of.as_of_at
),

final as (
    select
        {{ time_entry_exception(
            'TIME_UNAPPROVED_LATE',
            "'billable ' || " ~ display_number('late.hours') ~ " || ' h of ' || cast(late.spent_date as " ~ dbt.type_string() ~ ") || ' still '"
                ~ " || late.approval_status || '; approval was due by the end of ' || cast(late.approval_due_date as " ~ dbt.type_string() ~ ")",
            exception_details([
                ['approval_status', 'late.approval_status'],
                ['submitted_at', 'late.submitted_at'],
                ['approval_due_at', 'late.approval_due_at'],
                ['calendar_legal_entity', 'coalesce(late.employee_legal_entity, late.legal_entity)'],
                ['hours', 'late.hours'],
            ]),
            alias='late'
        ) }}
    from late
)

select * from final
