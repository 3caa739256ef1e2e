-- One row per Saleor product, in its latest state, per tenant.
-- The lake already holds one version per key and tenant, but the Postgres
-- raw copy is loaded by another job, so the latest ingested row wins here too.
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
        cast(created as timestamp with time zone) as created_at,
        cast("updatedAt" as timestamp with time zone) as updated_at,

        -- lineage
        _run_id,
        _ingested_at,

        row_number() over (
            partition by tenant_id, id
            -- explicit null order: Postgres sorts nulls first on desc, DuckDB last
            order by _ingested_at desc nulls last, _run_id desc nulls last
        ) as recency_rank

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
