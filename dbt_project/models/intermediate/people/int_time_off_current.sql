{#- Approved time off in force: one row per employee and day off, read from one HR snapshot per
    employee. The payroll drop delivers full snapshots (everything booked, past and future, as of
    the end of the snapshot date; HR exports only approved time off), so the newest snapshot
    replaces every earlier one: a booking missing from it was cancelled.

    Which snapshot, per employee: the newest time-off snapshot (a time_off file that loaded,
    even an empty one) on whose date the employee is on the HR roster (in that day's employees
    snapshot). An employee who has no time off left in that snapshot therefore has none, and a
    leaver dropped from later rosters keeps the snapshot of their last roster day. When the
    employee appears in no roster of a time-off snapshot date, the newest snapshot that holds
    rows for them is used.

    Late and re-sent deliveries: snapshots are ordered by their snapshot date, never by when
    they arrived, so a late file of an older date never overrides a newer one. A re-sent file
    with the same content loads nothing new (the loader skips a known name + hash); one with
    changed content is merged into the same snapshot key by the loader, so a row it removed
    would linger in raw: that case is not distinguishable here. -#}
with time_off as (
    select * from {{ ref('stg_hr__time_off') }}
),

rosters as (
    select distinct
        employee_id,
        snapshot_date
    from {{ ref('stg_hr__employees') }}
),

time_off_snapshots as (
    select distinct snapshot_date from {{ ref('stg_hr__files') }}
    where file_kind = 'time_off'
    union
    select distinct snapshot_date from time_off
),

on_roster as (
    select
        rosters.employee_id,
        max(rosters.snapshot_date) as snapshot_date
    from rosters
    inner join time_off_snapshots on rosters.snapshot_date = time_off_snapshots.snapshot_date
    group by rosters.employee_id
),

with_rows as (
    select
        employee_id,
        max(snapshot_date) as snapshot_date
    from time_off
    group by employee_id
),

chosen as (
    select
        coalesce(on_roster.employee_id, with_rows.employee_id) as employee_id,
        coalesce(on_roster.snapshot_date, with_rows.snapshot_date) as snapshot_date
    from on_roster
    full outer join with_rows on on_roster.employee_id = with_rows.employee_id
),

final as (
    select
        time_off.employee_id,
        time_off.time_off_date,
        sum(time_off.hours) as time_off_hours,
        {{ dbt.listagg(
            'distinct time_off.time_off_type', "','", 'order by time_off.time_off_type'
        ) }} as time_off_types,
        min(time_off.snapshot_date) as snapshot_date
    from time_off
    inner join chosen
        on time_off.employee_id = chosen.employee_id
        and time_off.snapshot_date = chosen.snapshot_date
    group by time_off.employee_id, time_off.time_off_date
)

select * from final
