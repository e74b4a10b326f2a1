{#- SCD2 history of every employee: a new version whenever a snapshot shows a changed grade,
    practice, region, legal entity, cost centre, standard hours or manager, or a cost rate
    takes effect. valid_from inclusive, valid_to exclusive (null: current).
    HR delivers full snapshots, so a change is dated by the first snapshot that shows it; the
    first version starts at the hire date. Cost rates carry their own effective dates and are
    read from the latest snapshot (the full history of rates). -#}
with snapshots as (
    select * from {{ ref('stg_hr__employees') }}
),

cost_rates as (
    select * from {{ ref('stg_hr__cost_rates') }}
),

latest_cost_snapshot as (
    select
        employee_id,
        max(snapshot_date) as snapshot_date
    from cost_rates
    group by employee_id
),

current_cost_rates as (
    select
        cost_rates.employee_id,
        cost_rates.effective_from,
        cost_rates.hourly_cost,
        cost_rates.currency_code
    from cost_rates
    inner join latest_cost_snapshot
        on cost_rates.employee_id = latest_cost_snapshot.employee_id
        and cost_rates.snapshot_date = latest_cost_snapshot.snapshot_date
),

attributes as (
    select
        *,
        md5(concat_ws(
            '|',
            grade, practice, region, legal_entity, cost_centre,
            cast(weekly_standard_hours as {{ dbt.type_string() }}), coalesce(manager_employee_id, '')
        )) as attribute_hash
    from snapshots
),

attribute_changes as (
    select
        *,
        lag(attribute_hash) over (partition by employee_id order by snapshot_date) as previous_hash,
        row_number() over (partition by employee_id order by snapshot_date) as snapshot_number
    from attributes
),

attribute_versions as (
    select
        *,
        case when snapshot_number = 1 then least(coalesce(hire_date, snapshot_date), snapshot_date)
            else snapshot_date
        end as changed_from
    from attribute_changes
    where previous_hash is null or previous_hash != attribute_hash
),

first_day as (
    select
        employee_id,
        min(changed_from) as first_day
    from attribute_versions
    group by employee_id
),

change_points as (
    select
        employee_id,
        changed_from as valid_from
    from attribute_versions
    union
    select
        current_cost_rates.employee_id,
        greatest(current_cost_rates.effective_from, first_day.first_day)
    from current_cost_rates
    inner join first_day on current_cost_rates.employee_id = first_day.employee_id
),

versions as (
    select
        change_points.employee_id,
        change_points.valid_from,
        lead(change_points.valid_from) over (
            partition by change_points.employee_id order by change_points.valid_from
        ) as valid_to
    from change_points
),

with_attributes as (
    select
        versions.*,
        attribute_versions.snapshot_date as attributes_snapshot_date,
        row_number() over (
            partition by versions.employee_id, versions.valid_from
            order by attribute_versions.changed_from desc
        ) as attribute_rank
    from versions
    inner join attribute_versions
        on versions.employee_id = attribute_versions.employee_id
        and attribute_versions.changed_from <= versions.valid_from
),

with_cost as (
    select
        with_attributes.*,
        current_cost_rates.hourly_cost,
        current_cost_rates.currency_code as cost_currency_code,
        row_number() over (
            partition by with_attributes.employee_id, with_attributes.valid_from
            order by current_cost_rates.effective_from desc
        ) as cost_rank
    from with_attributes
    left join current_cost_rates
        on with_attributes.employee_id = current_cost_rates.employee_id
        and current_cost_rates.effective_from <= with_attributes.valid_from
    where with_attributes.attribute_rank = 1
),

latest as (
    select *
    from (
        select
            *,
            row_number() over (partition by employee_id order by snapshot_date desc) as recency
        from snapshots
    ) as ranked
    where recency = 1
),

final as (
    select
        with_cost.employee_id || '@'
        || cast(with_cost.valid_from as {{ dbt.type_string() }}) as employee_version_id,
        with_cost.employee_id,
        with_cost.valid_from,
        with_cost.valid_to,
        with_cost.valid_to is null as is_current,
        latest.email,
        latest.first_name,
        latest.last_name,
        latest.full_name,
        snapshots.grade,
        snapshots.practice,
        snapshots.region,
        snapshots.legal_entity,
        snapshots.cost_centre,
        snapshots.weekly_standard_hours,
        snapshots.manager_employee_id,
        latest.hire_date,
        latest.termination_date,
        with_cost.hourly_cost,
        with_cost.cost_currency_code
    from with_cost
    inner join snapshots
        on with_cost.employee_id = snapshots.employee_id
        and with_cost.attributes_snapshot_date = snapshots.snapshot_date
    inner join latest on with_cost.employee_id = latest.employee_id
    where with_cost.cost_rank = 1
)

select * from final
