-- One row per (tenant_id, asin) that some price list matched: the market
-- estimates (int_sourcing_items_estimated) with the best supplier, the lowest
-- landed cost among suppliers that are not blocked or rejected (ties: the lower
-- risk tier, then the supplier id), and the unit economics at the selling price:
-- fees from the kept structure (macros/sourcing), margin, margin % and ROI.
-- An item whose every supplier is blocked stays, with no supplier, so the
-- tenant sees why it cannot be sourced.
with

matches as (

    select * from {{ ref('int_price_list_items_matched') }}

),

ranked as (

    select
        matches.*,
        row_number() over (
            partition by tenant_id, asin
            order by
                case when supplier_blocked then 1 else 0 end,
                landed_cost,
                tier_rank,
                supplier_id,
                supplier_sku,
                source_file
        ) as supplier_rank
    from matches

),

supplier_counts as (

    select
        tenant_id,
        asin,
        count(distinct supplier_id) as supplier_count,
        count(distinct case when not supplier_blocked then supplier_id end) as usable_suppliers
    from matches
    group by tenant_id, asin

),

best as (

    select * from ranked where supplier_rank = 1

),

joined as (

    select
        items.*,
        supplier_counts.supplier_count,
        supplier_counts.usable_suppliers,
        case when not best.supplier_blocked then best.supplier_id end as supplier_id,
        case when not best.supplier_blocked then best.supplier_name end as supplier_name,
        case when not best.supplier_blocked then best.supplier_sku end as supplier_sku,
        case when not best.supplier_blocked then best.supplier_tier end as supplier_tier,
        case when not best.supplier_blocked then best.supplier_review_status end
            as supplier_review_status,
        case when not best.supplier_blocked then best.supplier_reasons end as supplier_reasons,
        case when not best.supplier_blocked then best.supplier_known end as supplier_known,
        case when not best.supplier_blocked then best.match_rule end as match_rule,
        case when not best.supplier_blocked then best.source_file end as source_file,
        case when not best.supplier_blocked then best.source_line end as source_line,
        case when not best.supplier_blocked then best.unit_cost end as unit_cost,
        case when not best.supplier_blocked then best.cost_currency end as cost_currency,
        case when not best.supplier_blocked then best.moq end as moq,
        case when not best.supplier_blocked then best.lead_time_days end as lead_time_days,
        case when not best.supplier_blocked then best.landed_cost end as landed_cost,
        best.config_version
    from best
    inner join {{ ref('int_sourcing_items_estimated') }} as items
        on best.tenant_id = items.tenant_id
        and best.asin = items.asin
    inner join supplier_counts
        on best.tenant_id = supplier_counts.tenant_id
        and best.asin = supplier_counts.asin

),

economics as (

    select
        joined.*,
        cast({{ sourcing_fees_at_price('price', 'referral_rate', 'fixed_fees') }} as numeric(18, 2))
            as fees_per_unit,
        cast(
            {{ sourcing_margin_at_price('price', 'referral_rate', 'fixed_fees', 'landed_cost') }}
            as numeric(18, 2)
        ) as margin_per_unit
    from joined

)

select
    economics.*,
    case when price > 0 then cast(100 * margin_per_unit / price as numeric(9, 2)) end
        as margin_pct,
    case when landed_cost > 0 then cast(100 * margin_per_unit / landed_cost as numeric(9, 2)) end
        as roi_pct,
    cast(price * est_monthly_units as numeric(18, 2)) as est_monthly_revenue,
    -- what a new seller would keep: its share of the buy box times the unit margin
    cast(margin_per_unit * est_monthly_units * buy_box_share as numeric(18, 2))
        as est_monthly_profit
from economics
