-- One row per Stripe customer, per tenant.
-- The latest version per key and tenant (macros/staging/latest_version_rank.sql).
with

source as (

    select * from {{ lake_source('stripe', 'customers') }}

),

renamed as (

    select
        -- tenant
        tenant_id,

        -- ids
        id as customer_id,

        -- strings
        nullif(lower(trim(email)), '') as email,
        nullif(trim({{ json_text('_raw', ['name']) }}), '') as customer_name,
        lower({{ json_text('_raw', ['currency']) }}) as currency,

        -- numerics
        cast({{ json_text('_raw', ['balance']) }} as bigint) as balance,

        -- booleans
        cast({{ json_text('_raw', ['delinquent']) }} as boolean) as is_delinquent,
        livemode as is_livemode,

        -- dates
        to_timestamp(created) as created_at,

        -- lineage
        _run_id,
        _ingested_at,

        {{ latest_version_rank('id') }} as recency_rank

    from source

)

select
    tenant_id,
    customer_id,
    email,
    customer_name,
    currency,
    balance,
    is_delinquent,
    is_livemode,
    created_at,
    _run_id,
    _ingested_at
from renamed
where recency_rank = 1
