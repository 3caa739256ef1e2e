-- A row per opportunity per scoring, so an item's score, margin and supplier can
-- be followed over time (a price war, a supplier's tier changing).
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['tenant_id', 'asin', 'scored_at'],
        on_schema_change='append_new_columns'
    )
}}

select
    tenant_id,
    asin,
    scored_at,
    score,
    score_status,
    grade,
    demand_score,
    margin_score,
    competition_score,
    stability_score,
    supplier_score,
    confidence,
    price,
    landed_cost,
    margin_pct,
    est_monthly_units,
    supplier_id,
    supplier_tier,
    review_required,
    model_version,
    config_version,
    reasons,
    reasons_json
from {{ ref('mart_sourcing_opportunities') }}
{%- if is_incremental() %}
where {{ run_tenant_filter() }}
{%- endif %}
