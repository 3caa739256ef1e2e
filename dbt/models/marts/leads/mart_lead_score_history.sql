-- A row per lead per scoring, so trends can be drawn: every run that
-- rescores a tenant appends its leads' scores (keyed by scored_at, the time
-- the scoring model was fitted, so rebuilding dbt without a new model run
-- adds nothing). Incremental per tenant; a --full-refresh keeps only the
-- current scores.
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['tenant_id', 'lead_id', 'scored_at'],
        on_schema_change='append_new_columns'
    )
}}

select
    tenant_id,
    lead_id,
    scored_at,
    score,
    score_status,
    grade,
    probability,
    fit_score,
    engagement_score,
    is_mql,
    score_model,
    model_version,
    config_version,
    reasons
from {{ ref('mart_lead_scores') }}
{%- if is_incremental() %}
where {{ run_tenant_filter() }}
{%- endif %}
