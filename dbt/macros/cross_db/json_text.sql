{#
    The scalar at `path` (keys, outermost first) of a JSON text column, as
    text; null when absent or JSON null. Staging reads provider fields the lake
    keeps only in `_raw` this way, so a model never names a lake column that a
    table may lack (only declared columns are in every file). Use it for
    scalars only: an object comes back as JSON text, spaced differently on the
    two engines.
#}
{% macro json_text(column, path) -%}
    {{ return(adapter.dispatch('json_text', 'bizos')(column, path)) }}
{%- endmacro %}

{% macro default__json_text(column, path) -%}
    (cast({{ column }} as jsonb) #>> '{ {{- path | join(",") -}} }')
{%- endmacro %}

{% macro duckdb__json_text(column, path) -%}
    json_extract_string({{ column }}, '$.{{ path | join(".") }}')
{%- endmacro %}

{#- Spark: get_json_object with a JSONPath; JSON null and absent keys give null. -#}
{% macro spark__json_text(column, path) -%}
    get_json_object({{ column }}, '$.{{ path | join(".") }}')
{%- endmacro %}
