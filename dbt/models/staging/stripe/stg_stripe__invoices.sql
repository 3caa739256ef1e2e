-- One row per Stripe invoice, in its latest state, per tenant.
-- The latest version per key and tenant (macros/staging/latest_version_rank.sql).
with

source as (

    select * from {{ lake_source('stripe', 'invoices') }}

),

renamed as (

    select
        -- tenant
        tenant_id,

        -- ids
        id as invoice_id,
        {{ json_text('_raw', ['customer']) }} as customer_id,
        {{ json_text('_raw', ['subscription']) }} as subscription_id,
        {{ json_text('_raw', ['charge']) }} as charge_id,

        -- strings
        {{ json_text('_raw', ['number']) }} as invoice_number,
        lower(status) as status,
        {{ json_text('_raw', ['billing_reason']) }} as billing_reason,
        lower(currency) as currency,

        -- numerics
        amount_due as amount_due,
        amount_paid as amount_paid,
        total as total,

        -- booleans
        livemode as is_livemode,

        -- dates
        to_timestamp(created) as created_at,
        to_timestamp(cast({{ json_text('_raw', ['period_start']) }} as bigint)) as period_start_at,
        to_timestamp(cast({{ json_text('_raw', ['period_end']) }} as bigint)) as period_end_at,

        -- lineage
        _run_id,
        _ingested_at,

        {{ latest_version_rank('id') }} as recency_rank

    from source

)

select
    tenant_id,
    invoice_id,
    customer_id,
    subscription_id,
    charge_id,
    invoice_number,
    status,
    billing_reason,
    currency,
    amount_due,
    amount_paid,
    total,
    is_livemode,
    created_at,
    period_start_at,
    period_end_at,
    _run_id,
    _ingested_at
from renamed
where recency_rank = 1
