-- The lead funnel per tenant and week of creation (weeks start on Monday,
-- UTC): leads created, how many are marketing-qualified now, how they ended
-- (converted, lost, still open) and the grade mix. Rebuilt whole from the
-- current scores and labels on every run.

with

scores as (

    select * from {{ ref('mart_lead_scores') }}

),

labelled as (

    select tenant_id, lead_id, outcome from {{ ref('int_leads_labelled') }}

),

leads as (

    select
        scores.tenant_id,
        {{ utc_trunc_date('week', 'scores.created_at') }} as week_start,
        scores.score,
        scores.grade,
        scores.is_mql,
        scores.score_status,
        coalesce(labelled.outcome, 'open') as outcome
    from scores
    left join labelled
        on scores.tenant_id = labelled.tenant_id
        and scores.lead_id = labelled.lead_id

)

select
    tenant_id,
    week_start,
    count(*) as leads,
    sum(case when is_mql then 1 else 0 end) as mql_leads,
    sum(case when outcome = 'converted' then 1 else 0 end) as converted_leads,
    sum(case when outcome = 'lost' then 1 else 0 end) as lost_leads,
    sum(case when outcome = 'open' then 1 else 0 end) as open_leads,
    sum(case when score_status = 'unknown' then 1 else 0 end) as unknown_leads,
    sum(case when grade = 'A' then 1 else 0 end) as grade_a_leads,
    sum(case when grade = 'B' then 1 else 0 end) as grade_b_leads,
    sum(case when grade = 'C' then 1 else 0 end) as grade_c_leads,
    sum(case when grade = 'D' then 1 else 0 end) as grade_d_leads,
    -- total and count rather than an average: the two engines round a mean differently
    sum(case when score is not null then 1 else 0 end) as scored_leads,
    coalesce(sum(score), 0) as score_total
from leads
group by tenant_id, week_start
