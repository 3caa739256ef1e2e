-- GA4 sessions and conversions per tenant, day and session source/medium, as
-- the traffic dashboard and serving.traffic_by_source read them.
--
-- GA4 reports `sessionSourceMedium` as "source / medium"; a value without the
-- separator is all source, and a missing part is '(none)', so the key never
-- holds a null.
--
-- Incremental per tenant, delete+insert by tenant_id, like mart_lead_scores.
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='tenant_id',
        on_schema_change='append_new_columns'
    )
}}

{%- set only_tenant = is_incremental() and run_tenant_id() %}

with

report_rows as (

    select * from {{ ref('stg_ga4__report_rows') }}
    {%- if only_tenant %}
    where {{ run_tenant_filter() }}
    {%- endif %}

),

split as (

    select
        tenant_id,
        report_date,
        coalesce(nullif(trim(split_part(session_source_medium, ' / ', 1)), ''), '(none)') as source,
        coalesce(nullif(trim(split_part(session_source_medium, ' / ', 2)), ''), '(none)') as medium,
        sessions,
        conversions,
        screen_page_views
    from report_rows

)

select
    tenant_id,
    report_date,
    source,
    medium,
    cast(sum(coalesce(sessions, 0)) as bigint) as sessions,
    cast(sum(coalesce(conversions, 0)) as bigint) as conversions,
    cast(sum(coalesce(screen_page_views, 0)) as bigint) as page_views
from split
group by tenant_id, report_date, source, medium
