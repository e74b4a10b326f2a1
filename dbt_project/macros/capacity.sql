{#- The capacity rule and the utilisation target in force, one definition for the days behind the
    as-of date (fct_capacity_daily, fct_utilization_daily) and the days ahead of it
    (fct_forecast_capacity_daily). -#}

{#- A person's capacity on a weekday: the version's standard hours, 0 on a public holiday of their
    legal entity, minus approved time off, never below 0. -#}
{% macro capacity_hours(standard_hours, time_off_hours, is_holiday) -%}
cast(
    case
        when {{ is_holiday }} then 0
        when coalesce({{ time_off_hours }}, 0) >= {{ standard_hours }} then 0
        else {{ standard_hours }} - coalesce({{ time_off_hours }}, 0)
    end as decimal(12, 4)
)
{%- endmacro %}

{#- The utilisation target in force on a day: joins `targets` (the utilization_targets seed) to
    `rows` (with employee_id, grade and date_day) twice, as person_target and grade_target; target_in_force() then reads a person's own
    dated override first, else their grade's. -#}
{% macro utilization_target_joins(targets, rows) -%}
left join {{ targets }} as person_target
    on person_target.employee_id = {{ rows }}.employee_id
    and {{ rows }}.date_day >= person_target.valid_from
    and (person_target.valid_to is null or {{ rows }}.date_day < person_target.valid_to)
left join {{ targets }} as grade_target
    on grade_target.employee_id is null
    and grade_target.grade = {{ rows }}.grade
    and {{ rows }}.date_day >= grade_target.valid_from
    and (grade_target.valid_to is null or {{ rows }}.date_day < grade_target.valid_to)
{%- endmacro %}

{% macro target_in_force() -%}
coalesce(person_target.target_billable_utilization, grade_target.target_billable_utilization)
{%- endmacro %}
