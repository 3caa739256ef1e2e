-- Why: the grade is what apps and analysts act on, the score what they sort
-- by. If someone moves a band edge in int_leads_scored and not the documented
-- table (A >= 75, B >= 50, C >= 25, else D), or the reverse, the two disagree
-- silently; this fails on every lead whose grade is not its score's band.
select
    tenant_id,
    lead_id,
    score,
    grade
from {{ ref('mart_lead_scores') }}
where grade <> case
        when score >= 75 then 'A'
        when score >= 50 then 'B'
        when score >= 25 then 'C'
        else 'D'
    end
