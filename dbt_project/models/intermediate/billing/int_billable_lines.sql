{#- The reverse ETL's only input (reverse_etl/, docs/reverse_etl.md): one row per line the ERP
    should hold, or holds and may have to lose, with everything the request needs.

    - time lines (`time:<time entry id>`, a QuickBooks TimeActivity): billable time-and-materials
      entries that are approved, or that are in the ERP already (so a line rejected or blocked
      after it was pushed is withdrawn, and the diff sees every pushed line's current state);
    - milestone lines (`milestone:<story id>`, a draft Invoice): completed milestones of
      fixed-fee-by-milestone projects.

    line_status says what the sync may do: `invoiced` (the ERP has invoiced it: never touched),
    `ready` (send or keep in step), `held` (should be in
    the ERP but cannot be sent now, hold_reason says why; a line already there is left alone),
    `withdrawn` (should not be in the ERP: not approved, or held back by a blocking exception;
    an unbilled pushed line is deleted). A line leaves the ERP only for a stated reason: a time
    entry the sync pushed (the ledger's stg_ledger__line_states) or the ERP holds that was
    confirmed deleted in the time tool, or is no longer billable time and materials, stays here as
    `withdrawn` with that reason; the sync never deletes a line just because its row is missing.
    ERP references are resolved through identity mapping
    in the line's realm: the project's job (sub-customer), the employee, and the service item
    named after the person's role (milestones: "Fixed Fee - Milestone"). content_hash covers
    every field sent, so a change of any of them is an update. -#}
with ledger_time as (
    -- time entries the reverse ETL has pushed (or is pushing): their lines stay visible here
    select distinct time_entry_id from {{ ref('stg_ledger__line_states') }}
    where time_entry_id is not null and line_state != 'deleted'
),

entries as (
    select * from {{ ref('int_time_entries') }}
    where
        is_billable
        and billing_method = 'time_and_materials'
        and (is_approved or is_in_erp or time_entry_id in (select time_entry_id from ledger_time))
),

-- pushed (or in the ERP) entries that left the billable set, with the reason: deleted in the
-- time tool (confirmed: stg_time__time_entries.is_deleted), or no longer billable T&M
gone_entries as (
    select
        source.time_entry_id,
        source.spent_date,
        source.hours,
        facts.realm_id,
        facts.legal_entity,
        facts.project_id,
        facts.client_id,
        facts.employee_id,
        facts.currency_code,
        coalesce(facts.is_in_erp, false) as is_in_erp,
        facts.erp_time_activity_key,
        coalesce(facts.is_invoiced, false) as is_invoiced,
        facts.erp_invoice_key,
        case
            when source.is_deleted
                then 'deleted in the time tool (confirmed, detected '
                    || coalesce(cast(source.deleted_detected_at as {{ dbt.type_string() }}), 'earlier') || ')'
            when not coalesce(facts.is_billable, false)
                then 'no longer billable in the time tool'
            else 'no longer billed as time and materials (billing method '
                || coalesce(facts.billing_method, 'unknown') || ')'
        end as withdraw_reason
    from {{ ref('stg_time__time_entries') }} as source
    left join {{ ref('int_time_entries') }} as facts on source.time_entry_id = facts.time_entry_id
    where
        (
            source.is_deleted
            or not (coalesce(facts.is_billable, false) and facts.billing_method = 'time_and_materials')
        )
        and (
            source.time_entry_id in (select time_entry_id from ledger_time)
            or coalesce(facts.is_in_erp, false)
        )
),

milestones as (
    select * from {{ ref('int_milestones') }}
    where is_completed
),

projects as (
    select * from {{ ref('int_projects') }}
),

legal_entities as (
    select * from {{ ref('stg_firm__legal_entities') }}
),

project_jobs as (
    select * from {{ ref('int_project_source_ids') }}
    where source_system = 'erp'
),

employee_ids as (
    select * from {{ ref('int_employee_source_ids') }}
    where source_system = 'erp'
),

customers as (
    select * from {{ ref('stg_erp__customers') }}
),

erp_employees as (
    select * from {{ ref('stg_erp__employees') }}
),

items as (
    select * from {{ ref('stg_erp__items') }}
    where is_active
),

preferences as (
    select * from {{ ref('stg_erp__preferences') }}
),

-- one ERP job per project and realm; none or several cannot be addressed
jobs_per_realm as (
    select
        project_jobs.project_id,
        project_jobs.realm_id,
        count(*) as job_count,
        min(customers.erp_customer_id) as erp_customer_id,
        min(customers.customer_name) as erp_customer_name
    from project_jobs
    inner join customers on project_jobs.source_id = customers.erp_customer_key
    where customers.is_active
    group by project_jobs.project_id, project_jobs.realm_id
),

employees_per_realm as (
    select
        employee_ids.employee_id,
        employee_ids.realm_id,
        count(*) as erp_employee_count,
        min(erp_employees.erp_employee_id) as erp_employee_id,
        min(erp_employees.display_name) as erp_employee_name
    from employee_ids
    inner join erp_employees on employee_ids.source_id = erp_employees.erp_employee_key
    where erp_employees.is_active
    group by employee_ids.employee_id, employee_ids.realm_id
),

items_by_name as (
    select
        realm_id,
        item_name,
        count(*) as item_count,
        min(erp_item_id) as erp_item_id
    from items
    group by realm_id, item_name
),

time_lines as (
    select
        'time:' || cast(entries.time_entry_id as {{ dbt.type_string() }}) as line_key,
        'time' as line_kind,
        'TimeActivity' as erp_entity,
        entries.realm_id,
        entries.legal_entity,
        entries.time_entry_id,
        cast(null as {{ dbt.type_string() }}) as milestone_id,
        entries.project_id,
        projects.project_code,
        entries.client_id,
        entries.employee_id,
        jobs_per_realm.job_count,
        jobs_per_realm.erp_customer_id,
        jobs_per_realm.erp_customer_name,
        employees_per_realm.erp_employee_count,
        employees_per_realm.erp_employee_id,
        employees_per_realm.erp_employee_name,
        items_by_name.item_count,
        items_by_name.erp_item_id,
        entries.rate_role as erp_item_name,
        entries.spent_date as txn_date,
        entries.hours,
        cast(floor(round(entries.hours * 60, 0) / 60) as integer) as hours_whole,
        cast(round(entries.hours * 60, 0) - 60 * floor(round(entries.hours * 60, 0) / 60) as integer)
            as minutes,
        entries.bill_rate as rate,
        entries.currency_code,
        cast(entries.hours * entries.bill_rate as decimal(24, 8)) as amount,
        entries.bill_amount_reporting as amount_reporting,
        'harvest:' || cast(entries.time_entry_id as {{ dbt.type_string() }})
        || coalesce(' ' || left(entries.notes, 200), '') as description,
        cast(null as {{ dbt.type_string() }}) as private_note,
        entries.approved_at,
        entries.is_approved,
        entries.has_blocking_exception,
        entries.blocking_rule_codes,
        entries.approval_status,
        entries.is_in_erp,
        entries.erp_time_activity_key as erp_record_key,
        entries.is_invoiced,
        entries.erp_invoice_key,
        preferences.book_close_date
    from entries
    left join projects on entries.project_id = projects.project_id
    left join jobs_per_realm
        on entries.project_id = jobs_per_realm.project_id and entries.realm_id = jobs_per_realm.realm_id
    left join employees_per_realm
        on entries.employee_id = employees_per_realm.employee_id
        and entries.realm_id = employees_per_realm.realm_id
    left join items_by_name
        on entries.realm_id = items_by_name.realm_id and entries.rate_role = items_by_name.item_name
    left join preferences on entries.realm_id = preferences.realm_id
),

milestone_lines as (
    select
        'milestone:' || milestones.milestone_id as line_key,
        'milestone' as line_kind,
        'Invoice' as erp_entity,
        legal_entities.erp_realm_id as realm_id,
        milestones.legal_entity,
        cast(null as bigint) as time_entry_id,
        milestones.milestone_id,
        milestones.project_id,
        projects.project_code,
        milestones.client_id,
        cast(null as {{ dbt.type_string() }}) as employee_id,
        jobs_per_realm.job_count,
        jobs_per_realm.erp_customer_id,
        jobs_per_realm.erp_customer_name,
        cast(null as bigint) as erp_employee_count,
        cast(null as {{ dbt.type_string() }}) as erp_employee_id,
        cast(null as {{ dbt.type_string() }}) as erp_employee_name,
        items_by_name.item_count,
        items_by_name.erp_item_id,
        'Fixed Fee - Milestone' as erp_item_name,
        milestones.completed_date as txn_date,
        cast(null as decimal(12, 4)) as hours,
        cast(null as integer) as hours_whole,
        cast(null as integer) as minutes,
        cast(null as decimal(18, 4)) as rate,
        milestones.currency_code,
        cast(milestones.amount as decimal(24, 8)) as amount,
        milestones.amount_reporting,
        'milestone:' || milestones.milestone_id || ' ' || coalesce(milestones.milestone_name, '')
        || ' (' || coalesce(projects.project_code, milestones.project_id) || ')' as description,
        'milestone:' || milestones.milestone_id as private_note,
        cast(null as {{ dbt.type_timestamp() }}) as approved_at,
        true as is_approved,
        false as has_blocking_exception,
        cast(null as {{ dbt.type_string() }}) as blocking_rule_codes,
        cast(null as {{ dbt.type_string() }}) as approval_status,
        milestones.is_invoiced as is_in_erp,
        milestones.erp_invoice_key as erp_record_key,
        milestones.is_invoiced,
        milestones.erp_invoice_key,
        preferences.book_close_date
    from milestones
    inner join projects on milestones.project_id = projects.project_id
    left join legal_entities on milestones.legal_entity = legal_entities.legal_entity
    left join jobs_per_realm
        on milestones.project_id = jobs_per_realm.project_id
        and legal_entities.erp_realm_id = jobs_per_realm.realm_id
    left join items_by_name
        on legal_entities.erp_realm_id = items_by_name.realm_id
        and items_by_name.item_name = 'Fixed Fee - Milestone'
    left join preferences on legal_entities.erp_realm_id = preferences.realm_id
    where projects.billing_method = 'fixed_fee_milestones'
),

unioned as (
    select * from time_lines
    union all
    select * from milestone_lines
),

judged as (
    select
        unioned.*,
        case
            when not unioned.is_approved
                then 'not approved in the time tool (status '
                    || coalesce(unioned.approval_status, 'unknown')
                    || ')'
            when unioned.has_blocking_exception
                then 'held back by blocking exception(s) ' || coalesce(unioned.blocking_rule_codes, '')
        end as withdraw_reason,
        case
            when unioned.realm_id is null
                then 'no legal entity (ERP realm) for project '
                    || coalesce(unioned.project_code, unioned.project_id, 'unknown')
            when coalesce(unioned.job_count, 0) = 0
                then 'no ERP customer (job) for project '
                    || coalesce(unioned.project_code, unioned.project_id, 'unknown')
                    || ' in realm ' || unioned.realm_id
            when unioned.job_count > 1
                then cast(unioned.job_count as {{ dbt.type_string() }}) || ' ERP jobs match project '
                    || coalesce(unioned.project_code, unioned.project_id) || ' in realm ' || unioned.realm_id
            when unioned.line_kind = 'time' and coalesce(unioned.erp_employee_count, 0) = 0
                then 'no ERP employee for '
                    || coalesce(unioned.employee_id, 'an unknown person')
                    || ' in realm '
                    || unioned.realm_id
            when unioned.line_kind = 'time' and unioned.erp_employee_count > 1
                then cast(unioned.erp_employee_count as {{ dbt.type_string() }}) || ' ERP employees match '
                    || unioned.employee_id || ' in realm ' || unioned.realm_id
            when coalesce(unioned.item_count, 0) != 1
                then 'no single active ERP service item named '
                    || coalesce(unioned.erp_item_name, '(no role)')
                    || ' in realm ' || unioned.realm_id
            when unioned.line_kind = 'time'
                and (unioned.rate is null or unioned.hours is null or unioned.hours <= 0)
                then 'no bill rate or no positive hours'
            -- the ERP keeps whole minutes; 1.3333 h is 1 h 20 min (as CHANGED_AFTER_BILLING compares)
            when unioned.line_kind = 'time' and abs(unioned.hours * 60 - round(unioned.hours * 60, 0)) > 0.01
                then 'hours '
                    || {{ display_number('hours') }}
                    || ' are not whole minutes, as the ERP keeps them'
            when unioned.line_kind = 'time' and unioned.hours_whole > 24
                then 'more than 24 hours on one line'
            when unioned.txn_date is null
                then 'no date'
            when unioned.txn_date <= unioned.book_close_date
                then 'dated '
                    || cast(unioned.txn_date as {{ dbt.type_string() }})
                    || ', on or before the ERP book close date '
                    || cast(unioned.book_close_date as {{ dbt.type_string() }})
                    || ' of realm '
                    || unioned.realm_id
        end as hold_reason
    from unioned
),

final as (
    select
        line_key,
        line_kind,
        erp_entity,
        case
            when is_invoiced then 'invoiced'
            when withdraw_reason is not null then 'withdrawn'
            when hold_reason is not null then 'held'
            else 'ready'
        end as line_status,
        case
            when
                is_invoiced
                then 'invoiced in the ERP ('
                    || coalesce(erp_invoice_key, 'invoice unknown')
                    || '); never changed again'
            else coalesce(withdraw_reason, hold_reason)
        end as status_reason,
        realm_id,
        legal_entity,
        time_entry_id,
        milestone_id,
        project_id,
        project_code,
        client_id,
        employee_id,
        erp_customer_id,
        erp_customer_name,
        erp_employee_id,
        erp_employee_name,
        erp_item_id,
        erp_item_name,
        txn_date,
        hours,
        hours_whole,
        minutes,
        rate,
        currency_code,
        amount,
        amount_reporting,
        description,
        private_note,
        approved_at,
        is_in_erp,
        erp_record_key,
        is_invoiced,
        erp_invoice_key,
        {{ dbt.hash(
            "concat_ws('|', line_kind, realm_id, erp_customer_id, erp_employee_id, erp_item_id, "
            ~ "cast(txn_date as " ~ dbt.type_string() ~ "), cast(hours_whole as " ~ dbt.type_string() ~ "), "
            ~ "cast(minutes as " ~ dbt.type_string() ~ "), cast(rate as " ~ dbt.type_string() ~ "), "
            ~ "cast(amount as " ~ dbt.type_string() ~ "), description, private_note)"
        ) }} as content_hash
    from judged
),

gone_lines as (
    select
        'time:' || cast(time_entry_id as {{ dbt.type_string() }}) as line_key,
        'time' as line_kind,
        'TimeActivity' as erp_entity,
        case when is_invoiced then 'invoiced' else 'withdrawn' end as line_status,
        case
            when
                is_invoiced
                then 'invoiced in the ERP ('
                    || coalesce(erp_invoice_key, 'invoice unknown')
                    || '); never changed again'
            else withdraw_reason
        end as status_reason,
        realm_id,
        legal_entity,
        time_entry_id,
        cast(null as {{ dbt.type_string() }}) as milestone_id,
        project_id,
        cast(null as {{ dbt.type_string() }}) as project_code,
        client_id,
        employee_id,
        cast(null as {{ dbt.type_string() }}) as erp_customer_id,
        cast(null as {{ dbt.type_string() }}) as erp_customer_name,
        cast(null as {{ dbt.type_string() }}) as erp_employee_id,
        cast(null as {{ dbt.type_string() }}) as erp_employee_name,
        cast(null as {{ dbt.type_string() }}) as erp_item_id,
        cast(null as {{ dbt.type_string() }}) as erp_item_name,
        spent_date as txn_date,
        hours,
        cast(null as integer) as hours_whole,
        cast(null as integer) as minutes,
        cast(null as decimal(18, 4)) as rate,
        currency_code,
        cast(null as decimal(24, 8)) as amount,
        cast(null as decimal(24, 8)) as amount_reporting,
        cast(null as {{ dbt.type_string() }}) as description,
        cast(null as {{ dbt.type_string() }}) as private_note,
        cast(null as {{ dbt.type_timestamp() }}) as approved_at,
        is_in_erp,
        erp_time_activity_key as erp_record_key,
        is_invoiced,
        erp_invoice_key,
        {{ dbt.hash(
            "'gone|' || cast(time_entry_id as " ~ dbt.type_string() ~ ") || '|' || withdraw_reason"
        ) }}
            as content_hash
    from gone_entries
)

select * from final
union all
select * from gone_lines
