"""Every read the dashboard makes (docs/dashboards.md): `connection` (the published file, the
cache, the connections), `access` (the roles and the row and column rules every relation is read
through), `filters` (the global filters and the sidebar's choices), `semantic`
(KPIs as SQL from the build's semantic manifest) and one query module per page of app_pages/."""
