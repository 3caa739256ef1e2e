-- Buying from a high-risk supplier must never look as good as buying the same
-- kind of item from a low-risk one: of two opportunities equal in demand,
-- margin, competition and stability points, the one whose best supplier is
-- high or critical risk must rank lower (the API's order: score, then the
-- supplier component, so even two scores clamped at 0 keep the risky one below),
-- and must say it needs review unless a reviewer approved that supplier. Rows
-- returned are violations; a tenant's run checks that tenant's rows.
{{ config(meta={'dagster': {'ref': {'name': 'mart_sourcing_opportunities'}}}) }}

with

opportunities as (

    select * from {{ ref('mart_sourcing_opportunities') }}
    where score is not null and {{ run_tenant_filter() }}

)

select
    risky.tenant_id,
    risky.asin as risky_asin,
    safe.asin as safe_asin,
    risky.score as risky_score,
    safe.score as safe_score,
    risky.review_required
from opportunities as risky
inner join opportunities as safe
    on risky.tenant_id = safe.tenant_id
    and coalesce(risky.demand_score, -1) = coalesce(safe.demand_score, -1)
    and coalesce(risky.margin_score, -1) = coalesce(safe.margin_score, -1)
    and coalesce(risky.competition_score, -1) = coalesce(safe.competition_score, -1)
    and coalesce(risky.stability_score, -1) = coalesce(safe.stability_score, -1)
where risky.supplier_tier in ('high', 'critical')
    and safe.supplier_tier = 'low'
    and (
        risky.score > safe.score
        or (risky.score = safe.score and risky.supplier_score >= safe.supplier_score)
        or (not risky.review_required and risky.supplier_review_status <> 'approved')
    )
