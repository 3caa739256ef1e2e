-- One row per Stripe charge, in its latest state (refunds update it), per tenant.
-- The latest version per key and tenant (macros/staging/latest_version_rank.sql).
with

source as (

    select * from {{ lake_source('stripe', 'charges') }}

),

renamed as (

    select
        -- tenant
        tenant_id,

        -- ids
        id as charge_id,
        {{ json_text('_raw', ['customer']) }} as customer_id,
        {{ json_text('_raw', ['invoice']) }} as invoice_id,
        {{ json_text('_raw', ['balance_transaction']) }} as balance_transaction_id,

        -- strings
        lower(status) as status,
        lower(currency) as currency,
        {{ json_text('_raw', ['failure_code']) }} as failure_code,

        -- numerics
        amount as amount,
        amount_refunded as amount_refunded,
        cast({{ json_text('_raw', ['amount_captured']) }} as bigint) as amount_captured,

        -- booleans
        paid as is_paid,
        refunded as is_refunded,
        cast({{ json_text('_raw', ['disputed']) }} as boolean) as is_disputed,
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
    charge_id,
    customer_id,
    invoice_id,
    balance_transaction_id,
    status,
    currency,
    failure_code,
    amount,
    amount_refunded,
    amount_captured,
    is_paid,
    is_refunded,
    is_disputed,
    is_livemode,
    created_at,
    _run_id,
    _ingested_at
from renamed
where recency_rank = 1
