{#
    True when `value` contains a match of `pattern` (a partial match, like
    Postgres `~`). Write patterns in the subset both engines read the same way
    (alternation, groups, bracket classes, ^ and $): DuckDB uses RE2, Postgres
    its own ARE syntax, and `\b` means a word boundary only in RE2. Not a
    plain `~` on both: in DuckDB `~` is a full match.
#}
{% macro matches_regex(value, pattern) -%}
    {{ return(adapter.dispatch('matches_regex', 'bizos')(value, pattern)) }}
{%- endmacro %}

{% macro default__matches_regex(value, pattern) -%}
    ({{ value }} ~ '{{ pattern | replace("'", "''") }}')
{%- endmacro %}

{% macro duckdb__matches_regex(value, pattern) -%}
    regexp_matches({{ value }}, '{{ pattern | replace("'", "''") }}')
{%- endmacro %}

{#- Spark: `rlike` is a partial match (Java regex find), like Postgres `~`. -#}
{% macro spark__matches_regex(value, pattern) -%}
    ({{ value }} rlike '{{ pattern | replace("'", "''") }}')
{%- endmacro %}
