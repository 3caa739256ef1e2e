-- One row per Stripe subscription, in its latest state, per tenant.
-- The latest version per key and tenant (macros/staging/latest_version_rank.sql).
with

source as (

    select * from {{ lake_source('stripe', 'subscriptions') }}

),

renamed as (

    select
        -- tenant
        tenant_id,

        -- ids
        id as subscription_id,
        {{ json_text('_raw', ['customer']) }} as customer_id,

        -- strings
        lower(status) as status,
        {{ json_text('_raw', ['collection_method']) }} as collection_method,

        -- booleans
        cast({{ json_text('_raw', ['cancel_at_period_end']) }} as boolean) as cancels_at_period_end,
        livemode as is_livemode,

        -- dates
        to_timestamp(created) as created_at,
        to_timestamp(cast({{ json_text('_raw', ['current_period_start']) }} as bigint)) as current_period_start_at,
        to_timestamp(cast({{ json_text('_raw', ['current_period_end']) }} as bigint)) as current_period_end_at,
        to_timestamp(cast({{ json_text('_raw', ['canceled_at']) }} as bigint)) as canceled_at,
        to_timestamp(cast({{ json_text('_raw', ['ended_at']) }} as bigint)) as ended_at,

        -- lineage
        _run_id,
        _ingested_at,

        {{ latest_version_rank('id') }} as recency_rank

    from source

)

select
    tenant_id,
    subscription_id,
    customer_id,
    status,
    collection_method,
    cancels_at_period_end,
    is_livemode,
    created_at,
    current_period_start_at,
    current_period_end_at,
    canceled_at,
    ended_at,
    _run_id,
    _ingested_at
from renamed
where recency_rank = 1
