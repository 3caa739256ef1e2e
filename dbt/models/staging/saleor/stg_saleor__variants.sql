-- One row per Saleor product variant, in its latest state, per tenant.
-- The latest version per key and tenant (macros/staging/latest_version_rank.sql).
with

source as (

    select * from {{ lake_source('saleor', 'variants') }}

),

renamed as (

    select
        -- tenant
        tenant_id,

        -- ids
        id as variant_id,
        {{ json_text('_raw', ['product', 'id']) }} as product_id,

        -- strings
        sku as sku,
        name as variant_name,

        -- booleans
        cast({{ json_text('_raw', ['trackInventory']) }} as boolean) as tracks_inventory,

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
    variant_id,
    product_id,
    sku,
    variant_name,
    tracks_inventory,
    created_at,
    updated_at,
    _run_id,
    _ingested_at
from renamed
where recency_rank = 1
