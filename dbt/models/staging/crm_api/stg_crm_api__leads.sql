-- One row per CRM lead from the CRM API, in its latest state, per tenant.
-- The latest version per key and tenant (macros/staging/latest_version_rank.sql).
with

source as (

    select * from {{ lake_source('crm_api', 'leads') }}

),

renamed as (

    select
        -- tenant
        tenant_id,

        -- ids
        id as lead_id,
        {{ json_text('_raw', ['company_id']) }} as company_id,
        {{ json_text('_raw', ['contact_id']) }} as contact_id,

        -- strings
        lower(trim(email)) as email,
        nullif(trim({{ json_text('_raw', ['first_name']) }}), '') as first_name,
        nullif(trim({{ json_text('_raw', ['last_name']) }}), '') as last_name,
        nullif(trim({{ json_text('_raw', ['company']) }}), '') as company,
        nullif(trim({{ json_text('_raw', ['title']) }}), '') as title,
        nullif(lower(trim({{ json_text('_raw', ['industry']) }})), '') as industry,
        {{ normalize_company_size(json_text('_raw', ['company_size'])) }} as company_size,
        nullif(upper(trim({{ json_text('_raw', ['country']) }})), '') as country,
        nullif(lower(trim({{ json_text('_raw', ['source']) }})), '') as source,
        lower(trim(status)) as status,
        {{ json_text('_raw', ['owner']) }} as owner,

        -- dates
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
    lead_id,
    company_id,
    contact_id,
    email,
    first_name,
    last_name,
    company,
    title,
    industry,
    company_size,
    country,
    source,
    status,
    owner,
    created_at,
    updated_at,
    _run_id,
    _ingested_at
from renamed
where recency_rank = 1
