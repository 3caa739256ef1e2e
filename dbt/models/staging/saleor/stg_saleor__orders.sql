-- One row per Saleor order, in its latest state, per tenant.
-- The latest version per key and tenant (macros/staging/latest_version_rank.sql).
with

source as (

    select * from {{ lake_source('saleor', 'orders') }}

),

renamed as (

    select
        -- tenant
        tenant_id,

        -- ids
        id as order_id,
        number as order_number,
        {{ json_text('_raw', ['user', 'id']) }} as user_id,

        -- strings
        lower(status) as status,
        lower({{ json_text('_raw', ['paymentStatus']) }}) as payment_status,
        lower(trim("userEmail")) as user_email,
        {{ json_text('_raw', ['channel', 'slug']) }} as channel_slug,
        {{ json_text('_raw', ['total', 'gross', 'currency']) }} as currency,

        -- numerics
        cast({{ json_text('_raw', ['total', 'gross', 'amount']) }} as numeric(18, 2)) as total_gross_amount,
        cast({{ json_text('_raw', ['total', 'net', 'amount']) }} as numeric(18, 2)) as total_net_amount,

        -- booleans
        cast({{ json_text('_raw', ['isPaid']) }} as boolean) as is_paid,

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
    order_id,
    order_number,
    user_id,
    status,
    payment_status,
    user_email,
    channel_slug,
    currency,
    total_gross_amount,
    total_net_amount,
    is_paid,
    created_at,
    updated_at,
    _run_id,
    _ingested_at
from renamed
where recency_rank = 1
