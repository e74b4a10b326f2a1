{#- The final select of a report mart: every column of `relation` (a CTE name or a parenthesised
    query), then names beside its ids, so an analyst's question needs no joins: client_name (from
    dim_clients), project_code and project_name (dim_projects), employee_name (the person's
    current version in dim_employees). Left joins: a name is null where the dim lacks the id, and
    no row is lost or repeated (each dim is unique on its id; dim_employees on id among current
    versions). Switch a name off where the relation lacks the id or already has the column. -#}
{% macro with_names(relation, client=true, project_code=true, project_name=true, employee=false) -%}
select
    named.*
{%- if client %},
    clients.client_name
{%- endif %}
{%- if project_code %},
    projects.project_code
{%- endif %}
{%- if project_name %},
    projects.project_name
{%- endif %}
{%- if employee %},
    employees.full_name as employee_name
{%- endif %}
from {{ relation }} as named
{%- if client %}
left join {{ ref('dim_clients') }} as clients on named.client_id = clients.client_id
{%- endif %}
{%- if project_code or project_name %}
left join {{ ref('dim_projects') }} as projects on named.project_id = projects.project_id
{%- endif %}
{%- if employee %}
left join {{ ref('dim_employees') }} as employees
    on named.employee_id = employees.employee_id and employees.is_current
{%- endif %}
{%- endmacro %}
