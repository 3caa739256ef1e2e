-- One row per CRM company, in its latest state, per tenant.
-- The latest version per key and tenant (macros/staging/latest_version_rank.sql).
with

source as (

    select * from {{ lake_source('crm_api', 'companies') }}

),

renamed as (

    select
        -- tenant
        tenant_id,

        -- ids
        id as company_id,

        -- strings
        trim(name) as company_name,
        nullif(lower(trim({{ json_text('_raw', ['domain']) }})), '') as domain,
        nullif(lower(trim({{ json_text('_raw', ['industry']) }})), '') as industry,
        {{ normalize_company_size(json_text('_raw', ['company_size'])) }} as company_size,
        nullif(upper(trim({{ json_text('_raw', ['country']) }})), '') as country,
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
    company_id,
    company_name,
    domain,
    industry,
    company_size,
    country,
    owner,
    created_at,
    updated_at,
    _run_id,
    _ingested_at
from renamed
where recency_rank = 1
