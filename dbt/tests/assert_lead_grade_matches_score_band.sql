-- Why: the grade is what apps and analysts act on, the score what they sort
-- by. The bands live in the seed lead_grade_bands (read by the model and by
-- core/scoring.py); if the model's grading drifts from the seed, the two
-- disagree silently. This fails on every lead whose grade is not the band of
-- its score, the band being the one with the highest min_score at or below it.
-- Rules scores only (score_model rules_v0): a model's score is banded by the
-- tenant's thresholds, checked by assert_lead_model_grade_matches_thresholds.
-- It reads two nodes; the meta says which asset's Dagster check it is.
{{ config(meta={'dagster': {'ref': {'name': 'mart_lead_scores'}}}) }}

with

bands as (

    select grade, min_score from {{ ref('lead_grade_bands') }}

),

expected as (

    select
        scores.tenant_id,
        scores.lead_id,
        scores.score,
        scores.grade,
        scores.score_model,
        bands.grade as band_grade,
        row_number() over (
            partition by scores.tenant_id, scores.lead_id
            order by bands.min_score desc
        ) as band_rank
    from {{ ref('mart_lead_scores') }} as scores
    left join bands
        on scores.score >= bands.min_score

)

select
    tenant_id,
    lead_id,
    score,
    grade,
    band_grade
from expected
where band_rank = 1
    and {{ run_tenant_filter() }}
    and score_model = 'rules_v0'
    and (band_grade is null or grade <> band_grade)
