-- Why: a model's score is banded by the tenant's own thresholds (its scoring
-- configuration, written by the lead model to lead_model.models); if the mart
-- graded with other numbers, a sales team would chase the wrong leads. This
-- fails on every model-scored lead whose grade or MQL flag is not what the
-- thresholds give, and on every unknown lead that carries a score.
{{ config(meta={'dagster': {'ref': {'name': 'mart_lead_scores'}}}) }}

with

models as (

    select * from {{ score_source('lead_model', 'models') }} as model_rows

),

scores as (

    select scores.*, models.grade_a, models.grade_b, models.grade_c, models.mql_threshold
    from {{ ref('mart_lead_scores') }} as scores
    inner join models
        on scores.tenant_id = models.tenant_id
    where scores.score_model <> 'rules_v0'
        and {{ run_tenant_filter('scores.tenant_id') }}

)

select tenant_id, lead_id, score, grade, is_mql, score_status
from scores
where (score_status = 'unknown' and (score is not null or grade is not null))
    or (score_status = 'scored' and (
        score is null
        or grade <> {{ score_band('score', 'grade_a', 'grade_b', 'grade_c') }}
        or is_mql <> (score >= mql_threshold)
    ))
