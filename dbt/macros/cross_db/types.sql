{#
    Type names models write in casts, for the types whose names differ between
    engines: DuckDB and Postgres read `text`, `double precision` and `timestamp with
    time zone`; Spark knows `string`, `double` and `timestamp` (an instant, shown in
    the session's time zone, which the spark target fixes to UTC).
    `sql_type(declared)` maps a YAML `data_type` (a source's declared lake
    columns, written in Postgres names) onto the target's name.
#}
{% macro type_text() -%}
    {{ return(adapter.dispatch('type_text', 'bizos')()) }}
{%- endmacro %}
{% macro default__type_text() -%}text{%- endmacro %}
{% macro spark__type_text() -%}string{%- endmacro %}

{% macro type_double() -%}
    {{ return(adapter.dispatch('type_double', 'bizos')()) }}
{%- endmacro %}
{% macro default__type_double() -%}double precision{%- endmacro %}
{% macro spark__type_double() -%}double{%- endmacro %}

{% macro type_timestamptz() -%}
    {{ return(adapter.dispatch('type_timestamptz', 'bizos')()) }}
{%- endmacro %}
{% macro default__type_timestamptz() -%}timestamp with time zone{%- endmacro %}
{% macro spark__type_timestamptz() -%}timestamp{%- endmacro %}

{% macro sql_type(declared) -%}
    {{ return(adapter.dispatch('sql_type', 'bizos')(declared)) }}
{%- endmacro %}
{% macro default__sql_type(declared) -%}{{ return(declared) }}{%- endmacro %}
{% macro spark__sql_type(declared) -%}
    {%- set names = {
        'text': 'string', 'varchar': 'string', 'jsonb': 'string', 'json': 'string',
        'double precision': 'double', 'float8': 'double', 'real': 'float',
        'timestamp with time zone': 'timestamp', 'timestamptz': 'timestamp',
        'int': 'integer', 'int4': 'integer', 'int8': 'bigint',
    } -%}
    {{ return(names.get(declared | trim | lower, declared)) }}
{%- endmacro %}
