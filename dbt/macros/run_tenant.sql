{#
    The tenant this dbt invocation rebuilds (a comma-separated batch of them for
    a batch build), or none for every tenant.

    Runs name it in the environment (BIZOS_DBT_TENANT_ID, set by
    assets/warehouse.py), not in --vars: dbt throws away its whole partial
    parse when --vars change, and a full parse of this project costs ~10 s
    per run. The env var is read only while executing (`execute`), never
    while parsing, so dbt does not record it as a parse dependency either.
    `--vars '{tenant_id: t}'` still works for a hand-run dbt and wins.
    Tenant ids are checked (core/tenancy.py) before they reach dbt; the
    value is quoted anyway.
#}
{% macro run_tenant_id() -%}
    {%- set from_vars = var('tenant_id', none) -%}
    {%- if from_vars -%}
        {{ return(from_vars | string) }}
    {%- elif execute and env_var('BIZOS_DBT_TENANT_ID', '') -%}
        {{ return(env_var('BIZOS_DBT_TENANT_ID', '')) }}
    {%- else -%}
        {{ return(none) }}
    {%- endif -%}
{%- endmacro %}

{#
    The tenants this invocation rebuilds, as a list: a batch build (pipelines/
    batch.py) names several, comma-separated, in the same variable. Tenant ids
    never hold a comma (core/tenancy.py), so the split is unambiguous.
#}
{% macro run_tenant_ids() -%}
    {%- set tenant = run_tenant_id() -%}
    {%- if tenant -%}
        {{ return(tenant.split(',') | map('trim') | reject('equalto', '') | list) }}
    {%- else -%}
        {{ return([]) }}
    {%- endif -%}
{%- endmacro %}

{#- `tenant_id = '<t>'` for this run's tenant, `tenant_id in ('<t1>', ...)` for a
    batch's, or `1 = 1` for every tenant. -#}
{% macro run_tenant_filter(column='tenant_id') -%}
    {%- set tenants = run_tenant_ids() -%}
    {%- if tenants | length == 1 -%}
        {{ column }} = '{{ tenants[0] | replace("'", "''") }}'
    {%- elif tenants -%}
        {{ column }} in (
            {%- for t in tenants -%}
                '{{ t | replace("'", "''") }}'{{ ", " if not loop.last }}
            {%- endfor -%}
        )
    {%- else -%}
        1 = 1
    {%- endif -%}
{%- endmacro %}

{#
    dbt's hook for a data test's `where` config, extended so that in a
    tenant's run every test on a tenant table looks at that tenant's rows
    only: a run costs what its tenant's data costs, and one tenant's bad rows
    fail that tenant's run, not everyone's. Seeds (schema `reference`) hold no
    tenant column and are tested whole.
#}
{% macro get_where_subquery(relation) -%}
    {%- set where = config.get('where', '') -%}
    {%- set tenant = run_tenant_id() -%}
    {%- set seed = relation.schema is not none and relation.schema == 'reference' -%}
    {%- set clauses = [] -%}
    {%- if where -%}{%- do clauses.append('(' ~ where ~ ')') -%}{%- endif -%}
    {%- if tenant and not seed -%}{%- do clauses.append(run_tenant_filter()) -%}{%- endif -%}
    {%- if clauses -%}
        {%- set filtered -%}
            (select * from {{ relation }} where {{ clauses | join(' and ') }}) dbt_subquery
        {%- endset -%}
        {%- do return(filtered) -%}
    {%- else -%}
        {%- do return(relation) -%}
    {%- endif -%}
{%- endmacro %}
