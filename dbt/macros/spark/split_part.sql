{#
    dbt.split_part on Spark: Spark 3.3+ has split_part itself, with a literal
    delimiter and '' past the last part, as on DuckDB and Postgres. dbt-spark's
    own builds a regex from the delimiter with a backslash literal and returns
    null past the last part.
#}
{% macro spark__split_part(string_text, delimiter_text, part_number) -%}
    split_part({{ string_text }}, {{ delimiter_text }}, {{ part_number }})
{%- endmacro %}
