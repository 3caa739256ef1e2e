-- Offers on an item per day (Product Pricing), one row per (tenant_id, asin,
-- marketplace_id, offer_day): the history the price-stability and competition
-- estimates read.
with

source as (

    select * from {{ lake_source('sp_api', 'item_offers') }}

),

renamed as (

    select
        -- ids
        tenant_id,
        upper(asin) as asin,
        marketplace_id,

        -- strings
        lower(item_condition) as item_condition,
        upper(currency) as currency,

        -- numerics
        offer_count,
        fba_offer_count,
        cast(nullif(trim(lowest_price), '') as numeric(18, 2)) as lowest_price,
        cast(nullif(trim(buy_box_price), '') as numeric(18, 2)) as buy_box_price,

        -- booleans
        buy_box_is_fba,

        -- dates
        cast("day" as date) as offer_day,
        cast(fetched_at as {{ type_timestamptz() }}) as fetched_at,

        -- lineage
        _run_id,
        _ingested_at,

        {{ latest_version_rank('asin, marketplace_id, "day"') }} as recency_rank

    from source

)

select
    tenant_id,
    asin,
    marketplace_id,
    offer_day,
    item_condition,
    currency,
    offer_count,
    fba_offer_count,
    lowest_price,
    buy_box_price,
    buy_box_is_fba,
    fetched_at,
    _run_id,
    _ingested_at
from renamed
where recency_rank = 1
