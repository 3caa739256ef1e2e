-- Amazon catalog items, one row per (tenant_id, asin, marketplace_id): the item's
-- latest version (macros/staging/latest_version_rank.sql). Prices are decimal
-- text in the lake (no float rounding on the way); cast to numeric here.
with

source as (

    select * from {{ lake_source('sp_api', 'catalog_items') }}

),

renamed as (

    select
        -- ids
        tenant_id,
        upper(asin) as asin,
        marketplace_id,
        nullif(trim(upc), '') as upc,
        nullif(trim(ean), '') as ean,

        -- strings
        title,
        brand,
        lower(coalesce(nullif(trim(category), ''), 'unknown')) as category,
        category_title,
        upper(currency) as currency,

        -- numerics
        sales_rank,
        item_weight_kg,
        length_cm,
        width_cm,
        height_cm,
        cast(nullif(trim(list_price), '') as numeric(18, 2)) as list_price,

        -- dates
        cast(updated_at as {{ type_timestamptz() }}) as updated_at,

        -- lineage
        _run_id,
        _ingested_at,

        {{ latest_version_rank('asin, marketplace_id') }} as recency_rank

    from source

)

select
    tenant_id,
    asin,
    marketplace_id,
    upc,
    ean,
    title,
    brand,
    category,
    category_title,
    currency,
    sales_rank,
    item_weight_kg,
    length_cm,
    width_cm,
    height_cm,
    list_price,
    updated_at,
    _run_id,
    _ingested_at
from renamed
where recency_rank = 1
