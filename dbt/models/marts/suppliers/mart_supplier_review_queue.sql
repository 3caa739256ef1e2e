-- What needs a human now and why: suppliers pending review (medium risk or
-- worse, or a required document missing or expired), whose approval lapsed (a required document expired or went missing,
-- or a new sanctions match), whose information was requested, or that are
-- blocked by a confirmed match; the most urgent first.
select
    tenant_id,
    supplier_id,
    legal_name,
    grade as tier,
    score,
    review_status,
    review_due_date,
    review_due_date < {{ utc_date('current_timestamp') }} as overdue,
    split_part(reasons, '|', 1) as top_reason,
    reasons,
    risk_version,
    case grade when 'critical' then 1 when 'high' then 2 when 'medium' then 3 else 4 end
        as urgency
from {{ ref('mart_supplier_risk') }}
where review_status in ('pending', 'lapsed', 'info_requested', 'blocked')
