{#- Approved billable time-and-materials time that never reached the ERP, dated in a month whose
    books are closed: the hours the time tool approved and the hours the ERP billed for a closed
    month differ by it (revenue leakage; ../shared/spec/kpis.md). One exception per time entry,
    so the owner sees exactly which time is missing.

    - closed month: the month of the day worked is closed in the ERP realm of the project's
      legal entity (int_period_closes.is_closed, as the warehouse's now saw the close date). A
      month closed but never billed is the costliest leak (a month forgotten), so it counts; the
      open month does not (its time is simply not pushed yet);
    - approved billable time of people HR knows, hours above zero, on a known client project
      billed time and materials, approved by the warehouse's now, not deleted;
    - not held back by another blocking rule (int_time_entry_blocking_exceptions): that time is
      kept from the ERP on purpose and already has its exception.
    Other time never goes to the ERP and has its own exception. -#}
with entries as (
    select * from {{ ref('int_time_entries_resolved') }}
),

erp_entries as (
    select * from {{ ref('int_time_entries_erp') }}
),

period_closes as (
    select * from {{ ref('int_period_closes') }}
    where is_closed
),

held_back as (
    select * from {{ ref('int_time_entry_blocking_exceptions') }}
),

as_of as (
    select * from {{ ref('int_as_of') }}
),

approved_time as (
    select entries.*
    from entries
    cross join as_of
    where
        not entries.is_deleted
        and entries.billing_method = 'time_and_materials'
        and entries.is_known_project
        and not entries.is_internal_project
        and entries.is_billable
        and entries.is_known_employee
        and entries.hours > 0
        and entries.approval_status = 'approved'
        and entries.approved_at <= as_of.as_of_at
),

leaked as (
    select
        approved_time.*,
        period_closes.realm_id as closed_realm_id,
        period_closes.closed_at
    from approved_time
    inner join period_closes
        on approved_time.legal_entity = period_closes.legal_entity
        and cast({{ dbt.date_trunc('month', 'approved_time.spent_date') }} as date)
        = period_closes.month_start_date
    left join erp_entries on approved_time.time_entry_id = erp_entries.time_entry_id
    left join held_back on approved_time.time_entry_id = held_back.time_entry_id
    where
        erp_entries.time_entry_id is null
        and held_back.time_entry_id is null
),

final as (
    select
        {{ time_entry_exception(
            'RECON_MISMATCH',
            "'approved billable ' || " ~ display_number('leaked.hours') ~ " || ' h of ' || cast(leaked.spent_date as " ~ dbt.type_string() ~ ")"
                ~ " || ' never reached the ERP, though the books of ' || left(cast(leaked.spent_date as " ~ dbt.type_string() ~ "), 7)"
                ~ " || ' are closed in realm ' || leaked.closed_realm_id"
                ~ " || coalesce(' (closed ' || cast(cast(leaked.closed_at as date) as " ~ dbt.type_string() ~ ") || ')', '')",
            exception_details([
                ['hours', 'leaked.hours'],
                ['month', 'left(cast(leaked.spent_date as ' ~ dbt.type_string() ~ '), 7)'],
                ['approved_at', 'leaked.approved_at'],
                ['realm_id', 'leaked.closed_realm_id'],
                ['closed_at', 'leaked.closed_at'],
            ]),
            alias='leaked'
        ) }}
    from leaked
)

select * from final
