-- One row per CRM deal, in its latest stage, per tenant.
-- The latest version per key and tenant (macros/staging/latest_version_rank.sql).
with

source as (

    select * from {{ lake_source('crm_api', 'deals') }}

),

renamed as (

    select
        -- tenant
        tenant_id,

        -- ids
        id as deal_id,
        {{ json_text('_raw', ['lead_id']) }} as lead_id,
        {{ json_text('_raw', ['contact_id']) }} as contact_id,
        {{ json_text('_raw', ['company_id']) }} as company_id,

        -- strings
        {{ json_text('_raw', ['name']) }} as deal_name,
        {{ json_text('_raw', ['pipeline']) }} as pipeline,
        lower(stage) as stage,
        upper({{ json_text('_raw', ['currency']) }}) as currency,

        -- numerics
        cast({{ json_text('_raw', ['amount']) }} as numeric(18, 2)) as amount,

        -- booleans
        is_won as is_won,
        is_closed as is_closed,

        -- dates
        cast({{ json_text('_raw', ['expected_close_date']) }} as date) as expected_close_date,
        cast(created_at as {{ type_timestamptz() }}) as created_at,
        cast(updated_at as {{ type_timestamptz() }}) as updated_at,

        -- lineage
        _run_id,
        _ingested_at,

        {{ latest_version_rank('id') }} as recency_rank

    from source

)

select
    tenant_id,
    deal_id,
    lead_id,
    contact_id,
    company_id,
    deal_name,
    pipeline,
    stage,
    currency,
    amount,
    is_won,
    is_closed,
    expected_close_date,
    created_at,
    updated_at,
    _run_id,
    _ingested_at
from renamed
where recency_rank = 1
