{#- The sum of `expression` over the group, or null (unknown) when any row's value is null: an
    amount with a part that has no reporting-currency value (no exchange rate) is never a sum that
    leaves that part out. An expression of several columns (a + b) is null on a row when any of
    them is, and a case expression can confine the rule to some rows (`case when is_pipeline then
    0 else amount end`: only the other rows' nulls make it unknown). -#}
{% macro known_sum(expression) -%}
case when count({{ expression }}) = count(*) then sum({{ expression }}) end
{%- endmacro %}
