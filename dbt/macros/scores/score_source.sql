{#
    `source(source_name, table_name)` of a table a Python asset writes (the
    lead model's), or an empty relation with the source's declared columns
    while that table does not exist yet: a dbt build before any model run (or
    one without the Python step) still builds, and the marts fall back to the
    rules. Same stand-in as lake_source(), on both targets. Give it an alias
    (`from {{ score_source(...) }} as x`): Postgres before 16 wants one on a subquery.
#}
{% macro score_source(source_name, table_name) -%}
    {%- set relation = source(source_name, table_name) -%}
    {#- a unit test's fixture stands in as a plain name: use it -#}
    {%- if execute and relation is not string and relation.identifier
            and (relation.database or relation.schema) -%}
        {%- set found = adapter.get_relation(
            database=relation.database, schema=relation.schema, identifier=relation.identifier) -%}
        {%- if found is none -%}
            {{ return(lake_source_empty(source_name, table_name)) }}
        {%- endif -%}
    {%- endif -%}
    {{ return(relation) }}
{%- endmacro %}
