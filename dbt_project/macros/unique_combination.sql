{#- No two rows share the same values of the given columns (or expressions); rows where any of
    them is null are left out, as `unique` leaves out a null key. The engine-neutral form of
    `unique` on `a || '|' || cast(b as varchar)`: no cast to text, whose type each engine names
    differently. -#}
{% test unique_combination(model, columns) %}
select
    {% for column in columns -%}
    {{ column }} as key_{{ loop.index }},
    {% endfor -%}
    count(*) as n_records
from {{ model }}
where
    {% for column in columns -%}
    {{ "and " if not loop.first }}{{ column }} is not null
    {% endfor -%}
group by {% for column in columns %}{{ column }}{{ ", " if not loop.last }}{% endfor %}
having count(*) > 1
{% endtest %}
