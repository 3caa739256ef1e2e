-- What the marketplace says about each catalog item, one row per (tenant_id,
-- asin) in the tenant's marketplace: the selling price (the latest buy-box
-- price, else the lowest offer, else the list price), the fee structure of the
-- latest fee estimate, estimated monthly units from the sales rank through the
-- category's rank curve (seed sourcing_rank_curves: units ~= a * rank^-b, with
-- a low/high band; `default` for a category without a curve), competition
-- (offers and FBA offers on the latest day, a new seller's buy-box share
-- estimated as 1 / (offers + 1)) and price stability (coefficient of variation
-- of the buy-box price over the offer history kept).
with

marketplaces as (

    select distinct tenant_id, marketplace_id, min_offer_days
    from {{ ref('stg_price_lists__assumptions') }}

),

catalog as (

    select catalog.*, marketplaces.min_offer_days
    from {{ ref('stg_sp_api__catalog_items') }} as catalog
    inner join marketplaces
        on catalog.tenant_id = marketplaces.tenant_id
        and catalog.marketplace_id = marketplaces.marketplace_id

),

offers as (

    select
        offers.*,
        row_number() over (
            partition by offers.tenant_id, offers.asin order by offers.offer_day desc
        ) as day_rank
    from {{ ref('stg_sp_api__item_offers') }} as offers
    inner join marketplaces
        on offers.tenant_id = marketplaces.tenant_id
        and offers.marketplace_id = marketplaces.marketplace_id

),

offer_history as (

    select
        tenant_id,
        asin,
        count(*) as offer_days,
        count(buy_box_price) as buy_box_days,
        avg(buy_box_price) as buy_box_mean,
        stddev_samp(cast(buy_box_price as {{ type_double() }})) as buy_box_stddev,
        min(offer_day) as first_offer_day,
        max(offer_day) as last_offer_day
    from offers
    group by tenant_id, asin

),

latest_offer as (

    select * from offers where day_rank = 1

),

fees as (

    select
        fees.*,
        row_number() over (
            partition by fees.tenant_id, fees.asin order by fees.fee_day desc
        ) as day_rank
    from {{ ref('stg_sp_api__fee_estimates') }} as fees
    inner join marketplaces
        on fees.tenant_id = marketplaces.tenant_id
        and fees.marketplace_id = marketplaces.marketplace_id

),

latest_fees as (

    select
        tenant_id,
        asin,
        fee_day,
        price as fee_price,
        -- the structure, filled from its parts when the estimate left a total out
        coalesce(referral_rate, referral_fee / nullif(price, 0)) as referral_rate,
        coalesce(
            fixed_fees,
            coalesce(fba_fee, 0) + coalesce(variable_closing_fee, 0) + coalesce(per_item_fee, 0)
        ) as fixed_fees
    from fees
    where day_rank = 1

),

curves as (

    select * from {{ ref('sourcing_rank_curves') }}

),

estimated as (

    select
        catalog.tenant_id,
        catalog.asin,
        catalog.marketplace_id,
        catalog.title,
        catalog.brand,
        catalog.category,
        catalog.category_title,
        catalog.sales_rank,
        catalog.item_weight_kg,
        catalog.currency,
        catalog.min_offer_days,
        coalesce(latest_offer.buy_box_price, latest_offer.lowest_price, catalog.list_price)
            as price,
        case
            when latest_offer.buy_box_price is not null then 'buy_box'
            when latest_offer.lowest_price is not null then 'lowest_offer'
            when catalog.list_price is not null then 'list_price'
        end as price_basis,
        latest_fees.fee_day,
        latest_fees.referral_rate,
        latest_fees.fixed_fees,
        coalesce(own_curve.category, default_curve.category) as curve_category,
        case
            when catalog.sales_rank > 0 then
                coalesce(own_curve.curve_a, default_curve.curve_a)
                * power(
                    cast(catalog.sales_rank as {{ type_double() }}),
                    -coalesce(own_curve.curve_b, default_curve.curve_b)
                )
        end as units_estimate,
        coalesce(own_curve.low_factor, default_curve.low_factor) as low_factor,
        coalesce(own_curve.high_factor, default_curve.high_factor) as high_factor,
        latest_offer.offer_day as last_offer_day,
        latest_offer.offer_count,
        latest_offer.fba_offer_count,
        latest_offer.buy_box_is_fba,
        coalesce(offer_history.offer_days, 0) as offer_days,
        case
            when offer_history.buy_box_days >= 2 and offer_history.buy_box_mean > 0
                then offer_history.buy_box_stddev
                    / cast(offer_history.buy_box_mean as {{ type_double() }})
        end as price_cv
    from catalog
    left join latest_offer
        on catalog.tenant_id = latest_offer.tenant_id
        and catalog.asin = latest_offer.asin
    left join offer_history
        on catalog.tenant_id = offer_history.tenant_id
        and catalog.asin = offer_history.asin
    left join latest_fees
        on catalog.tenant_id = latest_fees.tenant_id
        and catalog.asin = latest_fees.asin
    left join curves as own_curve
        on catalog.category = own_curve.category
    inner join curves as default_curve
        on default_curve.category = 'default'

)

select
    tenant_id,
    asin,
    marketplace_id,
    title,
    brand,
    category,
    category_title,
    sales_rank,
    item_weight_kg,
    currency,
    min_offer_days,
    price,
    price_basis,
    fee_day,
    referral_rate,
    fixed_fees,
    curve_category,
    cast(round(cast(units_estimate as numeric(18, 4)), 0) as integer) as est_monthly_units,
    cast(round(cast(units_estimate * low_factor as numeric(18, 4)), 0) as integer)
        as est_monthly_units_low,
    cast(round(cast(units_estimate * high_factor as numeric(18, 4)), 0) as integer)
        as est_monthly_units_high,
    last_offer_day,
    offer_count,
    fba_offer_count,
    buy_box_is_fba,
    offer_days,
    case when offer_count is not null then cast(1.0 / (offer_count + 1) as numeric(9, 4)) end
        as buy_box_share,
    cast(price_cv as numeric(9, 4)) as price_cv
from estimated
