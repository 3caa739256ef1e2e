-- One row per AI request billed to the tenant, per tenant.
-- The latest version per key and tenant (macros/staging/latest_version_rank.sql).
with

source as (

    select * from {{ lake_source('ai_usage', 'usage') }}

),

renamed as (

    select
        -- tenant
        tenant_id,

        -- ids
        id as usage_id,
        {{ json_text('_raw', ['request_id']) }} as request_id,

        -- strings
        model as model,
        {{ json_text('_raw', ['feature']) }} as feature,
        lower({{ json_text('_raw', ['status']) }}) as status,

        -- numerics
        input_tokens as input_tokens,
        output_tokens as output_tokens,
        input_tokens + output_tokens as total_tokens,
        cast(cost_usd as numeric(18, 6)) as cost_usd,
        cast({{ json_text('_raw', ['latency_ms']) }} as bigint) as latency_ms,

        -- dates
        cast("timestamp" as {{ type_timestamptz() }}) as requested_at,

        -- lineage
        _run_id,
        _ingested_at,

        {{ latest_version_rank('id') }} as recency_rank

    from source

)

select
    tenant_id,
    usage_id,
    request_id,
    model,
    feature,
    status,
    input_tokens,
    output_tokens,
    total_tokens,
    cost_usd,
    latency_ms,
    requested_at,
    _run_id,
    _ingested_at
from renamed
where recency_rank = 1
