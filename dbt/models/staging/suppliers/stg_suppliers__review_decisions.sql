-- Reviewers' decisions (append-only in the ops database), one row per decision.
with

source as (

    select * from {{ lake_source('suppliers', 'review_decisions') }}

)

select
    tenant_id,
    cast(decision_id as bigint) as decision_id,
    supplier_id,
    decision,
    comment,
    reviewer,
    risk_version,
    coalesce(match_verdicts, '[]') as match_verdicts,
    cast(decided_at as {{ type_timestamptz() }}) as decided_at,
    cast(_ingested_at as {{ type_timestamptz() }}) as _ingested_at
from source
