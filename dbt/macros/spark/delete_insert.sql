{#
    `delete+insert` on Spark, the strategy the project's incremental marts use on
    DuckDB and Postgres (a tenant's run replaces that tenant's rows). dbt-spark
    offers it only through MERGE, which plain Parquet tables lack (Delta, Iceberg
    and Hudi have it). Here it is done as a Parquet table can: the rows to keep
    (the target's rows whose key is not among the new rows) and the new rows go
    into a side table, which then overwrites the target. It rewrites the whole
    table, so it costs the table's size, not the tenant's; on a lake format with
    MERGE, set file_format and use `merge` instead (docs/operations.md).

    These two override dbt-spark's macros of the same name (the root project's
    macros come first); every other strategy goes to dbt-spark's own.
#}
{% macro dbt_spark_validate_get_incremental_strategy(raw_strategy, file_format) %}
    {%- if raw_strategy == 'delete+insert' -%}
        {% do return(raw_strategy) %}
    {%- endif -%}
    {% do return(dbt.dbt_spark_validate_get_incremental_strategy(raw_strategy, file_format)) %}
{% endmacro %}

{% macro dbt_spark_get_incremental_sql(strategy, source, target, existing, unique_key, incremental_predicates) %}
    {%- if strategy != 'delete+insert' -%}
        {{ return(dbt.dbt_spark_get_incremental_sql(strategy, source, target, existing, unique_key, incremental_predicates)) }}
    {%- endif -%}
    {%- if incremental_predicates -%}
        {{ exceptions.raise_compiler_error("delete+insert on Spark takes no incremental_predicates yet: " ~ target) }}
    {%- endif -%}
    {%- if not unique_key -%}
        {{ exceptions.raise_compiler_error("delete+insert on Spark needs a unique_key: " ~ target) }}
    {%- endif -%}
    {%- set keys = [unique_key] if unique_key is string else unique_key -%}
    {%- set columns = adapter.get_columns_in_relation(target) | map(attribute='quoted') | join(', ') -%}
    {%- set keep = target.incorporate(path={"identifier": target.identifier ~ '__dbt_keep'}) -%}
    {%- set matched -%}
        {%- for key in keys %}new_rows.{{ key }} = old_rows.{{ key }}{{ ' and ' if not loop.last }}{% endfor -%}
    {%- endset -%}
    {% do run_query('drop table if exists ' ~ keep) %}
    {% do run_query(
        'create table ' ~ keep ~ ' using parquet as select ' ~ columns ~ ' from ' ~ target
        ~ ' as old_rows where not exists (select 1 from ' ~ source ~ ' as new_rows where '
        ~ matched ~ ')'
    ) %}
    {% do run_query('insert into ' ~ keep ~ ' select ' ~ columns ~ ' from ' ~ source) %}
    {% do run_query('insert overwrite table ' ~ target ~ ' select ' ~ columns ~ ' from ' ~ keep) %}
    drop table if exists {{ keep }}
{% endmacro %}
