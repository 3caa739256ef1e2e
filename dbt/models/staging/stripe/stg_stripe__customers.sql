-- One row per Stripe customer, per tenant.
-- The lake already holds one version per key and tenant, but the Postgres
-- raw copy is loaded by another job, so the latest ingested row wins here too.
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

        row_number() over (
            partition by tenant_id, id
            -- explicit null order: Postgres sorts nulls first on desc, DuckDB last
            order by _ingested_at desc nulls last, _run_id desc nulls last
        ) as recency_rank

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
