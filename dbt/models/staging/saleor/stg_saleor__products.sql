-- One row per Saleor product, in its latest state, per tenant.
-- The latest version per key and tenant (macros/staging/latest_version_rank.sql).
with

source as (

    select * from {{ lake_source('saleor', 'products') }}

),

renamed as (

    select
        -- tenant
        tenant_id,

        -- ids
        id as product_id,

        -- strings
        trim(name) as product_name,
        slug as slug,
        {{ json_text('_raw', ['productType', 'name']) }} as product_type,
        {{ json_text('_raw', ['category', 'slug']) }} as category_slug,

        -- dates
        cast(created as {{ type_timestamptz() }}) as created_at,
        cast("updatedAt" as {{ type_timestamptz() }}) as updated_at,

        -- lineage
        _run_id,
        _ingested_at,

        {{ latest_version_rank('id') }} as recency_rank

    from source

)

select
    tenant_id,
    product_id,
    product_name,
    slug,
    product_type,
    category_slug,
    created_at,
    updated_at,
    _run_id,
    _ingested_at
from renamed
where recency_rank = 1
