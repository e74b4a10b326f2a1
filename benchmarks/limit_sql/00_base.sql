-- Shared building blocks of the hand-written KPI limit, straight from the raw tables
-- (attached read-only as `r`). Written from docs/spec (kpis.md, sources.md) and the raw
-- columns only, independently of dbt_project.

-- The clock: the ERP's server time at the last load (the sandbox serves the world as of its clock).
create or replace temp table lim_clock as
select max(cast(server_time as timestamptz)) as clock_at,
       cast(max(cast(server_time as timestamptz)) at time zone 'UTC' as date) as clock_date
from r.raw_erp.preferences;

-- Project codes typed differently in the time tool (prj-103, PRJ00112) match the PSA's
-- PRJ-00103 once reduced to letters + the number without leading zeros.
create or replace temp macro lim_code_key(code) as
    regexp_replace(regexp_replace(upper(code), '[^A-Z0-9]', '', 'g'), '^([A-Z]*)0*([0-9]+)$', '\1\2');

-- HR: the latest snapshot of each employee (termination dates and changes arrive in later files).
create or replace temp table lim_employees as
select * exclude (rn) from (
    select *, row_number() over (partition by employee_id order by snapshot_date desc) as rn
    from r.raw_hr.employees
) where rn = 1;

-- Time-tool users matched to HR employees by e-mail (unknown users have no employee).
create or replace temp table lim_users as
select u.id as user_id, e.employee_id
from r.raw_time.users as u
inner join lim_employees as e on lower(trim(u.email)) = lower(trim(e.email));

create or replace temp table lim_workspaces as
select id as workspace_id, project_code, lim_code_key(project_code) as code_key, billing_method,
       contract_number, legal_entity, currency
from r.raw_psa.workspaces;

-- Time entries (one row per id in raw_time), with employee, PSA project and billing method.
create or replace temp table lim_entries as
select
    t.id as time_entry_id,
    cast(t.spent_date as date) as spent_date,
    t.hours,
    t.billable,
    t.approval_status,
    cast(t.approved_at as timestamptz) as approved_at,
    t.user__id as user_id,
    u.employee_id,
    w.workspace_id,
    w.billing_method,
    w.currency
from r.raw_time.time_entries as t
left join lim_users as u on t.user__id = u.user_id
left join lim_workspaces as w on lim_code_key(t.project__code) = w.code_key;

-- Exchange rates to USD (the reporting currency): the ERP's rate on or before a date.
create or replace temp table lim_rates as
select source_currency_code as currency, cast(as_of_date as date) as rate_date, avg(rate) as rate
from r.raw_erp.exchange_rates
where target_currency_code = 'USD'
group by all;

-- ERP invoices dated on or before the clock, and their lines.
create or replace temp table lim_invoices as
select realm_id, id as invoice_id, cast(txn_date as date) as invoice_date, currency_ref__value as currency
from r.raw_erp.invoices
where cast(txn_date as date) <= (select clock_date from lim_clock);

create or replace temp table lim_invoice_lines as
select i.realm_id, i.invoice_id, i.invoice_date, i.currency, l.amount, l.item_ref__name as item_name,
       l.description, l.linked_txn_type, l.linked_txn_id
from r.raw_erp.invoice_lines as l
inner join lim_invoices as i on l.invoice_id = i.invoice_id and l.realm_id = i.realm_id;

-- The Harvest entry behind each ERP TimeActivity: its description starts `harvest:<id>`.
create or replace temp table lim_activities as
select realm_id, id as activity_id,
       cast(regexp_extract(description, '^harvest:([0-9]+)', 1) as bigint) as time_entry_id,
       hourly_rate
from r.raw_erp.time_activities
where regexp_matches(description, '^harvest:[0-9]+');

-- Time lines of invoices, with the entry they bill.
create or replace temp table lim_billed_time as
select a.time_entry_id, l.invoice_date, l.amount, l.currency, l.realm_id, l.invoice_id
from lim_invoice_lines as l
inner join lim_activities as a on l.linked_txn_type = 'TimeActivity' and l.linked_txn_id = a.activity_id
    and l.realm_id = a.realm_id;

-- Standard bill rate: the rate card of the entry's project, the person's role on it (PSA
-- assignment), the version in force on the day worked. More than one, or none: no rate.
create or replace temp table lim_standard_rates as
select e.time_entry_id, count(distinct v.id) as rate_count, min(v.bill_rate) as bill_rate
from lim_entries as e
inner join lim_employees as emp on e.employee_id = emp.employee_id
inner join r.raw_psa.assignments as a on a.workspace_id = e.workspace_id
    and lower(a.assignee_email) = lower(emp.email)
inner join r.raw_psa.rate_cards as c on c.workspace_id = e.workspace_id
inner join r.raw_psa.rate_card_versions as v on v.rate_card_id = c.id and v.role = a.role
    and cast(v.effective_from as date) <= e.spent_date
    and (v.effective_to is null or e.spent_date <= cast(v.effective_to as date))
group by all;
