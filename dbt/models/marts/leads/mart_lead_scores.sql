-- Lead scores as serving and Superset read them (docs/contracts.md), one row
-- per (tenant_id, lead_id). Incremental per tenant: in a run for tenant t1
-- (run_tenant_id(), macros/run_tenant.sql) it deletes and re-inserts only t1's rows, so a
-- tenant partition in Dagster rebuilds its own slice and nobody else's.
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='tenant_id',
        on_schema_change='fail'
    )
}}

{%- set tenant_id = run_tenant_id() %}

with

scored as (

    select * from {{ ref('int_leads_scored') }}
    {%- if is_incremental() and tenant_id %}
    where tenant_id = '{{ tenant_id | string | replace("'", "''") }}'
    {%- endif %}

),

-- One row per (lead, factor): the factor columns unpivoted, so the reasons
-- can be ranked and joined with one ordered aggregate on both engines.
factor_points as (

    {%- set factors = [
        'title_seniority', 'company_size', 'industry_fit', 'lead_source',
        'business_email', 'status', 'recency'
    ] %}
    {%- for factor in factors %}
    select tenant_id, lead_id, '{{ factor }}' as factor, {{ factor }}_points as points
    from scored
    {{ 'union all' if not loop.last }}
    {%- endfor %}

),

ranked_factors as (

    select
        tenant_id,
        lead_id,
        factor,
        points,
        -- factor names are plain lowercase ASCII with distinct first letters,
        -- so the tie-break reads the same under any collation
        row_number() over (
            partition by tenant_id, lead_id
            order by points desc, factor asc
        ) as factor_rank
    from factor_points
    where points > 0

),

reasons as (

    select
        tenant_id,
        lead_id,
        {{ dbt.listagg(
            measure="factor || ':+' || cast(points as " ~ dbt.type_string() ~ ")",
            delimiter_text="'|'",
            order_by_clause="order by points desc, factor asc"
        ) }} as reasons
    from ranked_factors
    where factor_rank <= 3
    group by tenant_id, lead_id

)

select
    scored.tenant_id,
    scored.lead_id,
    scored.email,
    scored.first_name,
    scored.last_name,
    scored.company,
    scored.title,
    scored.industry,
    scored.company_size,
    scored.country,
    scored.source,
    scored.status,
    scored.created_at,
    scored.score,
    scored.grade,
    coalesce(reasons.reasons, '') as reasons,
    cast('rules_v0' as {{ dbt.type_string() }}) as score_model
from scored
left join reasons
    on scored.tenant_id = reasons.tenant_id
    and scored.lead_id = reasons.lead_id
