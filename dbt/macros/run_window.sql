{#
    The span of days a backfill run rebuilds, from --vars
    '{window_start: YYYY-MM-DD, window_end: YYYY-MM-DD}' (start included, end
    excluded), which assets/warehouse.py passes only for runs tagged
    bizos/window (pipelines/backfill.py). Scheduled runs pass no vars, so their
    partial parse survives (see run_tenant.sql) and the filter is `1 = 1`.
    Incremental models with an event date use it in their incremental branch:
    a three-day backfill rebuilds those three days and leaves the rest as is.
#}
{% macro run_window_filter(column) -%}
    {%- set start = var('window_start', none) -%}
    {%- set end = var('window_end', none) -%}
    {%- if start and end -%}
        {{ column }} >= cast('{{ start }}' as date) and {{ column }} < cast('{{ end }}' as date)
    {%- else -%}
        1 = 1
    {%- endif -%}
{%- endmacro %}
