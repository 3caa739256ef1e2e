{#
    1 for the row a staging model keeps of each (tenant, key): the latest
    version. The lake already holds one row per key and tenant (landing keeps
    the highest `_version`), but the Postgres raw copy is loaded by another job,
    so staging picks the same row again, by the same rule: highest `_version`,
    then latest ingested. Nulls are ordered explicitly: on `desc`, Postgres
    sorts them first and DuckDB last.
#}
{% macro latest_version_rank(key='id') -%}
    row_number() over (
        partition by tenant_id, {{ key }}
        order by _version desc nulls last, _ingested_at desc nulls last, _run_id desc nulls last
    )
{%- endmacro %}
