{#
    A model contract's declared types on Spark. The YAML declares them in Postgres
    names (text, timestamp with time zone, double precision), which Spark cannot
    parse; dbt builds the contract's empty schema from them. Each is renamed by
    sql_type() (macros/cross_db/types.sql), then dbt's own macro builds the schema,
    so the check still compares the model's columns to the declared ones.
#}
{% macro spark__get_empty_schema_sql(columns) %}
    {%- set renamed = {} -%}
    {%- for key in columns -%}
        {%- set column = {} -%}
        {%- do column.update(columns[key]) -%}
        {%- if column.get('data_type') -%}
            {%- do column.update({'data_type': sql_type(column['data_type'])}) -%}
        {%- endif -%}
        {%- do renamed.update({key: column}) -%}
    {%- endfor -%}
    {{ return(dbt.default__get_empty_schema_sql(renamed)) }}
{% endmacro %}

{#- The same renaming for unit-test fixtures, whose columns take the declared
    types of the sources and models they stand in for. -#}
{% macro spark__safe_cast(field, type) %}
    {{- return(dbt.spark__safe_cast(field, sql_type(type))) -}}
{% endmacro %}
