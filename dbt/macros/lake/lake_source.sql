{#
    `source(source_name, table_name)`, or an empty relation with the source's
    declared columns when the table has no data yet.

    A lake table has no files until some tenant connects the source and loads
    it (and on Postgres no raw table until the raw loader first runs). A
    staging model must still build then, empty, so that one tenant's missing
    source never breaks dbt for everyone. The empty relation is typed from the
    `data_type` of the columns in the source YAML, which are the table's
    declared lake columns (in Postgres names; sql_type() renames them on Spark).

    Staging models call this instead of source(); it calls source() itself, so
    the lineage to the source stays in the manifest.
#}
{% macro lake_source(source_name, table_name) -%}
    {%- set relation = source(source_name, table_name) -%}
    {%- if not execute -%}
        {{ relation }}
    {%- elif staging_reads_run_tenants_only() -%}
        {{ lake_source_run_tenants(relation, source_name, table_name) }}
    {%- elif not adapter.dispatch('lake_source_has_data', 'bizos')(relation) -%}
        {{ lake_source_empty(source_name, table_name) }}
    {%- else -%}
        {{ relation }}
    {%- endif -%}
{%- endmacro %}

{#-
    The run's tenants' files of a lake table on DuckDB, for a staging table that
    replaces only their rows (macros/staging/staging_table.sql): read_parquet over
    each such tenant's folder instead of every tenant's. The glob is listed once to
    learn which of them have files (a listing, not a read: cheap even at thousands
    of tenants); when the run covers every tenant that has files, the source is
    read as it is.
-#}
{% macro lake_source_run_tenants(relation, source_name, table_name) -%}
    {%- set rendered = relation.render() -%}
    {%- set marker = '/tenant=*/' -%}
    {%- set pattern = rendered.split("'")[1] if rendered.startswith("read_parquet('") else '' -%}
    {%- if marker not in pattern -%}
        {{ exceptions.raise_compiler_error(
            "lake source " ~ source_name ~ "." ~ table_name ~ " is not read_parquet('<...>"
            ~ marker ~ "...>'): cannot read one tenant's files of " ~ rendered) }}
    {%- endif -%}
    {%- set found = run_query(
        "select distinct regexp_extract(file, '/tenant=([^/]+)/', 1) from glob('" ~ pattern ~ "')") -%}
    {%- set with_files = found.columns[0].values() | list -%}
    {%- set wanted = run_tenant_ids() | select('in', with_files) | list -%}
    {%- if not wanted -%}
        {{ lake_source_empty(source_name, table_name) }}
    {%- elif wanted | length == with_files | length -%}
        {{ relation }}
    {%- else -%}
        {%- set head, tail = pattern.split(marker, 1) -%}
        {%- set globs = [] -%}
        {%- for tenant in wanted -%}
            {%- do globs.append("'" ~ head ~ "/tenant=" ~ tenant ~ "/" ~ tail ~ "'") -%}
        {%- endfor -%}
        {{ rendered.replace("'" ~ pattern ~ "'", "[" ~ globs | join(", ") ~ "]") }}
    {%- endif -%}
{%- endmacro %}

{% macro lake_source_empty(source_name, table_name) -%}
    {%- set node = graph.sources['source.' ~ project_name ~ '.' ~ source_name ~ '.' ~ table_name] -%}
    {%- set columns = node.columns.values() | list -%}
    {%- if not columns -%}
        {{ exceptions.raise_compiler_error(
            "source " ~ source_name ~ "." ~ table_name ~ " declares no columns: "
            ~ "list them with data_type so an empty lake table can be typed") }}
    {%- endif -%}
    (
        select
        {%- for column in columns %}
            cast(null as {{ sql_type(column.data_type) }}) as {{ adapter.quote(column.name) }}{{ "," if not loop.last }}
        {%- endfor %}
        where 1 = 0
    )
{%- endmacro %}

{#- On DuckDB the source is read_parquet('<glob>', ...) over the lake
    (meta.external_location); it has data when the glob matches a file. -#}
{% macro duckdb__lake_source_has_data(relation) -%}
    {%- set rendered = relation.render() -%}
    {%- if not rendered.startswith("read_parquet('") -%}
        {{ return(true) }}
    {%- endif -%}
    {%- set pattern = rendered.split("'")[1] -%}
    {%- set found = run_query("select count(*) from glob('" ~ pattern ~ "')") -%}
    {{ return(found.columns[0].values()[0] > 0) }}
{%- endmacro %}

{#- Elsewhere the source is a table the raw loader creates; on Spark, a view
    spark/dbt_spark.py makes over the table's lake files before dbt starts. -#}
{% macro default__lake_source_has_data(relation) -%}
    {%- set found = adapter.get_relation(
        database=relation.database, schema=relation.schema, identifier=relation.identifier) -%}
    {{ return(found is not none) }}
{%- endmacro %}
