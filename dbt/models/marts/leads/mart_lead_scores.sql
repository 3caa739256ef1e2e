-- Lead scores as serving and Superset read them (docs/contracts.md,
-- docs/scoring.md), one row per (tenant_id, lead_id), in the one score shape
-- (macros/scores/score_shape.sql): score, status, band, components, reasons,
-- model and configuration versions, when scored.
--
-- The score comes from the tenant's lead model (the lead_model asset: its own
-- logistic regression, or the pooled one) when it has scored the lead, else
-- from the v0 rules (int_leads_scored), and `score_model` says which. A lead
-- the model knows too little about has status `unknown` and no score.
--
-- Incremental per tenant: in a run for tenant t1 (run_tenant_id(),
-- macros/run_tenant.sql) it deletes and re-inserts only t1's rows.
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='tenant_id',
        on_schema_change='append_new_columns'
    )
}}

{%- set tenant_id = run_tenant_id() %}
{%- set only_tenant = is_incremental() and tenant_id %}
{%- set rule_factors = [
    'title_seniority', 'company_size', 'industry_fit', 'lead_source',
    'business_email', 'status', 'recency'
] %}

with

scored as (

    select * from {{ ref('int_leads_scored') }}
    {%- if only_tenant %}
    where {{ run_tenant_filter() }}
    {%- endif %}

),

models as (

    select * from {{ score_source('lead_model', 'models') }} as model_rows
    {%- if only_tenant %}
    where {{ run_tenant_filter() }}
    {%- endif %}

),

-- only the predictions of the tenant's current model
predictions as (

    select predictions.*
    from {{ score_source('lead_model', 'predictions') }} as predictions
    inner join models
        on predictions.tenant_id = models.tenant_id
        and predictions.model_version = models.model_version

),

contributions as (

    select contributions.*
    from {{ score_source('lead_model', 'contributions') }} as contributions
    inner join predictions
        on contributions.tenant_id = predictions.tenant_id
        and contributions.lead_id = predictions.lead_id

),

-- The model's reasons: its three biggest positive and three biggest negative
-- contributions, positives first.
model_reasons as (

    select
        tenant_id,
        lead_id,
        feature as code,
        label,
        points,
        evidence_ref,
        case when points > 0 then 0 else 100 end
            + row_number() over (
                partition by tenant_id, lead_id, case when points > 0 then 1 else 0 end
                order by abs(points) desc, feature asc
            ) as reason_order
    from contributions
    where points <> 0

),

-- The rules' reasons, for leads the model did not score: the three factors
-- that earned the most points (factor names have distinct first letters, so
-- the tie-break reads the same under any collation).
rule_points as (

    {%- for factor in rule_factors %}
    select
        tenant_id,
        lead_id,
        '{{ factor }}' as code,
        '{{ factor | replace("_", " ") }}' as label,
        {{ factor }}_points as points,
        'crm_export.leads:' || lead_id || '#{{ factor }}' as evidence_ref
    from scored
    where not exists (
        select 1 from predictions
        where predictions.tenant_id = scored.tenant_id and predictions.lead_id = scored.lead_id
    )
    {{ 'union all' if not loop.last }}
    {%- endfor %}

),

rule_reasons as (

    select
        *,
        row_number() over (
            partition by tenant_id, lead_id
            order by points desc, code asc
        ) as reason_order
    from rule_points
    where points > 0

),

top_reasons as (

    select tenant_id, lead_id, code, label, points, evidence_ref, reason_order
    from model_reasons
    where reason_order <= 3 or reason_order between 101 and 103
    union all
    select tenant_id, lead_id, code, label, points, evidence_ref, reason_order
    from rule_reasons
    where reason_order <= 3

),

reasons as (

    {{ score_reasons('top_reasons', ['tenant_id', 'lead_id']) }}

),

combined as (

    select
        scored.*,
        case when predictions.lead_id is null then 'rules_v0' else models.model_kind end
            as model_kind,
        coalesce(predictions.score_status, 'scored') as score_status,
        case when predictions.lead_id is null then scored.score else predictions.score end
            as combined_score,
        predictions.probability,
        predictions.fit_score,
        predictions.engagement_score,
        case
            when predictions.lead_id is null then scored.grade
            else {{ score_band('predictions.score', 'models.grade_a', 'models.grade_b', 'models.grade_c') }}
        end as band,
        case
            when predictions.lead_id is null then scored.grade in ('A', 'B')
            when predictions.score is null then null
            else predictions.score >= models.mql_threshold
        end as is_mql,
        case
            when predictions.lead_id is null then 'rules_v0'
            else models.model_version
        end as model_version,
        models.config_version,
        coalesce(models.trained_at, cast('{{ run_started_at }}' as {{ type_timestamptz() }}))
            as scored_at
    from scored
    left join models
        on scored.tenant_id = models.tenant_id
    left join predictions
        on scored.tenant_id = predictions.tenant_id
        and scored.lead_id = predictions.lead_id

)

select
    combined.tenant_id,
    combined.lead_id,
    combined.email,
    combined.first_name,
    combined.last_name,
    combined.company,
    combined.title,
    combined.industry,
    combined.company_size,
    combined.country,
    combined.source,
    combined.status,
    combined.created_at,
    cast(combined.combined_score as integer) as score,
    cast(combined.band as {{ dbt.type_string() }}) as grade,
    coalesce(reasons.reasons, '') as reasons,
    cast(combined.model_kind as {{ dbt.type_string() }}) as score_model,
    cast(combined.score_status as {{ dbt.type_string() }}) as score_status,
    cast(combined.probability as {{ type_double() }}) as probability,
    cast(combined.fit_score as integer) as fit_score,
    cast(combined.engagement_score as integer) as engagement_score,
    combined.is_mql,
    coalesce(reasons.reasons_json, '[]') as reasons_json,
    cast(combined.model_version as {{ dbt.type_string() }}) as model_version,
    cast(combined.config_version as {{ dbt.type_string() }}) as config_version,
    combined.scored_at
from combined
left join reasons
    on combined.tenant_id = reasons.tenant_id
    and combined.lead_id = reasons.lead_id
