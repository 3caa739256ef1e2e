-- One row per Saleor order line, per tenant.
-- The latest version per key and tenant (macros/staging/latest_version_rank.sql).
with

source as (

    select * from {{ lake_source('saleor', 'order_lines') }}

),

renamed as (

    select
        -- tenant
        tenant_id,

        -- ids
        id as order_line_id,
        order_id as order_id,
        {{ json_text('_raw', ['productVariantId']) }} as variant_id,

        -- strings
        "productSku" as product_sku,
        {{ json_text('_raw', ['productName']) }} as product_name,
        {{ json_text('_raw', ['variantName']) }} as variant_name,
        {{ json_text('_raw', ['totalPrice', 'gross', 'currency']) }} as currency,

        -- numerics
        quantity as quantity,
        cast({{ json_text('_raw', ['quantityFulfilled']) }} as bigint) as quantity_fulfilled,
        cast({{ json_text('_raw', ['unitPrice', 'gross', 'amount']) }} as numeric(18, 2)) as unit_price_gross_amount,
        cast({{ json_text('_raw', ['totalPrice', 'gross', 'amount']) }} as numeric(18, 2)) as total_price_gross_amount,

        -- dates
        cast(order_created as {{ type_timestamptz() }}) as order_created_at,

        -- lineage
        _run_id,
        _ingested_at,

        {{ latest_version_rank('id') }} as recency_rank

    from source

)

select
    tenant_id,
    order_line_id,
    order_id,
    variant_id,
    product_sku,
    product_name,
    variant_name,
    currency,
    quantity,
    quantity_fulfilled,
    unit_price_gross_amount,
    total_price_gross_amount,
    order_created_at,
    _run_id,
    _ingested_at
from renamed
where recency_rank = 1
