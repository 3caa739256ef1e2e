-- A row per supplier per scoring, so a supplier's risk can be followed over
-- time and a decision traced to the risk version it was made on.
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['tenant_id', 'supplier_id', 'scored_at'],
        on_schema_change='append_new_columns'
    )
}}

select
    tenant_id,
    supplier_id,
    scored_at,
    score,
    score_status,
    grade,
    compliance_risk,
    sanctions_risk,
    delivery_risk,
    country_risk,
    concentration_risk,
    review_status,
    risk_version,
    model_version,
    config_version,
    reasons,
    reasons_json
from {{ ref('mart_supplier_risk') }}
{%- if is_incremental() %}
where {{ run_tenant_filter() }}
{%- endif %}
