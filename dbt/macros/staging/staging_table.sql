{#
    Staging on DuckDB: a table per lake table, replaced tenant by tenant.

    Why not views: a staging view re-reads its lake files on every read, and each
    data test and downstream model reads it again. The lake holds a file per
    tenant, table and month, so at 1,000 tenants a build read 143,844 small files
    over and over: dbt's first build took 573 s against 35 s at 100 tenants for the
    same 1 M events, and 12 GB (bench/RESULTS.md, "End to end at 1,000 tenants").
    As tables, a build reads each lake file once, and only the run's tenants'
    files: a tenant's run costs its own files, however many tenants the lake holds.

    How a build replaces a tenant's rows (dbt_project.yml: materialized
    incremental, strategy append, these hooks):
    - first build, or the model's SQL changed since the table was built (its
      checksum, kept as the table's comment by the post-hook): every row is
      deleted and every tenant's files read;
    - otherwise, with tenants named (a tenant's run, a batch): the pre-hook deletes
      those tenants' rows and lake_source() reads only their files, so a tenant
      whose files are gone (a source disconnected) is left with none;
    - otherwise (a hand-run dbt build, no tenant): every row, every file.
    Postgres and Spark keep views: there the sources are tables the engine filters
    by tenant itself.
#}

{#- What a staging table's comment holds: the model's checksum, and a version
    to bump when a macro the staging models use changes what they return. -#}
{% macro staging_version() -%}
    {{- return('staging-v1:' ~ model.checksum.checksum) -}}
{%- endmacro %}

{#- Whether this build keeps the rows of tenants outside the run (see above). -#}
{% macro staging_reads_run_tenants_only() -%}
    {%- if not execute or target.type != 'duckdb' or model.config.materialized != 'incremental' -%}
        {{ return(false) }}
    {%- endif -%}
    {%- if not is_incremental() or not run_tenant_ids() -%}
        {{ return(false) }}
    {%- endif -%}
    {%- set found = run_query(
        "select comment from duckdb_tables() where database_name = '" ~ this.database
        ~ "' and schema_name = '" ~ this.schema ~ "' and table_name = '" ~ this.identifier ~ "'") -%}
    {%- set kept = found.columns[0].values()[0] if found.rows | length else none -%}
    {{ return(kept == staging_version()) }}
{%- endmacro %}

{#- Pre-hook: delete what this build will insert again. -#}
{% macro staging_clear() -%}
    {%- if execute and target.type == 'duckdb' and model.config.materialized == 'incremental' and is_incremental() -%}
        delete from {{ this }} where {{ run_tenant_filter() if staging_reads_run_tenants_only() else '1 = 1' }}
    {%- endif -%}
{%- endmacro %}

{#- Post-hook: remember which SQL built the table. -#}
{% macro staging_mark() -%}
    {%- if execute and target.type == 'duckdb' and model.config.materialized == 'incremental' -%}
        comment on table {{ this }} is '{{ staging_version() }}'
    {%- endif -%}
{%- endmacro %}
