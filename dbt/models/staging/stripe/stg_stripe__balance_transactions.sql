-- One row per Stripe balance transaction, in its latest state (pending becomes available), per tenant.
-- The latest version per key and tenant (macros/staging/latest_version_rank.sql).
with

source as (

    select * from {{ lake_source('stripe', 'balance_transactions') }}

),

renamed as (

    select
        -- tenant
        tenant_id,

        -- ids
        id as balance_transaction_id,
        {{ json_text('_raw', ['source']) }} as source_id,

        -- strings
        lower(type) as transaction_type,
        {{ json_text('_raw', ['reporting_category']) }} as reporting_category,
        lower({{ json_text('_raw', ['status']) }}) as status,
        lower(currency) as currency,

        -- numerics
        amount as amount,
        fee as fee,
        net as net,

        -- booleans
        livemode as is_livemode,

        -- dates
        to_timestamp(created) as created_at,
        to_timestamp(cast({{ json_text('_raw', ['available_on']) }} as bigint)) as available_on_at,

        -- lineage
        _run_id,
        _ingested_at,

        {{ latest_version_rank('id') }} as recency_rank

    from source

)

select
    tenant_id,
    balance_transaction_id,
    source_id,
    transaction_type,
    reporting_category,
    status,
    currency,
    amount,
    fee,
    net,
    is_livemode,
    created_at,
    available_on_at,
    _run_id,
    _ingested_at
from renamed
where recency_rank = 1
