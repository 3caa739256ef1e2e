-- Every reason of every opportunity's score, one row each: its component
-- (demand, margin, competition, stability, supplier), a code and label, its
-- signed points and its evidence (the rank and curve, the price arithmetic, the
-- offers day, the supplier with its own risk reasons). `*_unknown` reasons carry
-- 0 points and say which estimate had nothing to go on. The supplier's risk
-- costs points (medium -10, high -25, critical -40, not vetted -15), so of two
-- equal items the one only a risky supplier can supply ranks lower.
{%- set text = dbt.type_string() %}
with

costed as (

    select * from {{ ref('int_sourcing_opportunities_costed') }}

),

reasons as (

    -- demand: estimated monthly units from the sales rank
    select
        tenant_id, asin, 'demand' as component,
        case
            when est_monthly_units is null then 'demand_unknown'
            when est_monthly_units >= 300 then 'strong_demand'
            when est_monthly_units >= 100 then 'good_demand'
            when est_monthly_units >= 30 then 'some_demand'
            else 'weak_demand'
        end as code,
        case
            when est_monthly_units is null then 'No sales rank: demand unknown'
            else 'About ' || cast(est_monthly_units as {{ text }}) || ' sold a month (between '
                || cast(est_monthly_units_low as {{ text }}) || ' and '
                || cast(est_monthly_units_high as {{ text }}) || ')'
        end as label,
        case
            when est_monthly_units >= 300 then 30
            when est_monthly_units >= 100 then 20
            when est_monthly_units >= 30 then 10
            else 0
        end as points,
        case
            when sales_rank is not null then
                'catalog_items:' || asin || ' sales_rank ' || cast(sales_rank as {{ text }})
                || ' in ' || category || ' (curve ' || curve_category || ')'
        end as evidence_ref
    from costed

    union all

    -- margin: what is left of the price after fees and landed cost
    select
        tenant_id, asin, 'margin',
        case
            when margin_pct is null then 'margin_unknown'
            when margin_pct >= 30 then 'high_margin'
            when margin_pct >= 20 then 'good_margin'
            when margin_pct >= 10 then 'thin_margin'
            when margin_pct >= 0 then 'tiny_margin'
            else 'negative_margin'
        end,
        case
            when margin_pct is null then 'No price or no usable supplier: margin unknown'
            else 'Margin ' || cast(margin_pct as {{ text }}) || '% of the price'
        end,
        case
            when margin_pct >= 30 then 35
            when margin_pct >= 20 then 25
            when margin_pct >= 10 then 12
            when margin_pct >= 0 then 0
            when margin_pct < 0 then -20
            else 0
        end,
        case
            when margin_pct is not null then
                'price ' || cast(price as {{ text }}) || ' (' || price_basis || ') - fees '
                || cast(fees_per_unit as {{ text }}) || ' - landed cost '
                || cast(landed_cost as {{ text }}) || ' = ' || cast(margin_per_unit as {{ text }})
                || ' ' || currency
        end
    from costed

    union all

    select
        tenant_id, asin, 'margin', 'high_roi',
        'Return on cost ' || cast(roi_pct as {{ text }}) || '%',
        5,
        'landed cost ' || cast(landed_cost as {{ text }}) || ', margin '
            || cast(margin_per_unit as {{ text }}) || ' ' || currency
    from costed
    where roi_pct >= 100

    union all

    -- competition: offers on the latest day
    select
        tenant_id, asin, 'competition',
        case
            when offer_count is null then 'competition_unknown'
            when offer_count <= 3 then 'few_sellers'
            when offer_count <= 10 then 'some_sellers'
            else 'crowded'
        end,
        case
            when offer_count is null then 'No offers seen: competition unknown'
            else cast(offer_count as {{ text }}) || ' offers, '
                || cast(coalesce(fba_offer_count, 0) as {{ text }})
                || ' by FBA; a new seller''s buy-box share about '
                || cast(cast(100 * buy_box_share as numeric(9, 1)) as {{ text }}) || '%'
        end,
        case
            when offer_count <= 3 then 20
            when offer_count <= 10 then 10
            else 0
        end,
        case
            when offer_count is not null then
                'item_offers:' || asin || '@' || cast(last_offer_day as {{ text }})
        end
    from costed

    union all

    -- stability: coefficient of variation of the buy-box price over the history
    select
        tenant_id, asin, 'stability',
        case
            when price_cv is null then 'price_stability_unknown'
            when price_cv < 0.05 then 'stable_price'
            when price_cv < 0.15 then 'steady_price'
            else 'volatile_price'
        end,
        case
            when price_cv is null then 'Fewer than two days of buy-box prices: stability unknown'
            else 'Buy-box price varies ' || cast(cast(100 * price_cv as numeric(9, 1)) as {{ text }})
                || '% over ' || cast(offer_days as {{ text }}) || ' days'
        end,
        case
            when price_cv < 0.05 then 15
            when price_cv < 0.15 then 8
            when price_cv >= 0.15 then -5
            else 0
        end,
        case
            when price_cv is not null then
                'item_offers:' || asin || ' buy-box cv ' || cast(price_cv as {{ text }})
                || ' over ' || cast(offer_days as {{ text }}) || ' days'
        end
    from costed

    union all

    -- supplier: the best usable supplier's risk, citing its own reasons
    select
        tenant_id, asin, 'supplier',
        case
            when supplier_id is null then 'no_usable_supplier'
            when not supplier_known then 'supplier_not_vetted'
            when supplier_tier is null then 'supplier_unrated'
            else 'supplier_' || supplier_tier || '_risk'
        end,
        case
            when supplier_id is null then 'Every supplier of this item is blocked or rejected'
            when not supplier_known then 'Supplier ' || supplier_id || ' is not in the supplier records'
            when supplier_tier is null then 'Supplier ' || supplier_id || ': too little known to rate'
            else 'Supplier ' || supplier_id || ' is ' || supplier_tier || ' risk'
        end,
        case
            when supplier_id is null then -50
            when not supplier_known then -15
            when supplier_tier is null then -15
            when supplier_tier = 'critical' then -40
            when supplier_tier = 'high' then -25
            when supplier_tier = 'medium' then -10
            else 0
        end,
        case
            when supplier_id is not null then
                'supplier:' || supplier_id || ' (' || coalesce(supplier_review_status, 'not vetted')
                || case
                    when coalesce(supplier_reasons, '') <> '' then '; ' || supplier_reasons
                    else ''
                end || ')'
        end
    from costed

)

select
    tenant_id,
    asin,
    cast(component as {{ text }}) as component,
    cast(code as {{ text }}) as code,
    cast(label as {{ text }}) as label,
    points,
    cast(evidence_ref as {{ text }}) as evidence_ref,
    row_number() over (
        partition by tenant_id, asin order by points desc, code
    ) as reason_order
from reasons
