-- One row per CRM contact, in its latest state, per tenant.
-- The latest version per key and tenant (macros/staging/latest_version_rank.sql).
with

source as (

    select * from {{ lake_source('crm_api', 'contacts') }}

),

renamed as (

    select
        -- tenant
        tenant_id,

        -- ids
        id as contact_id,
        lead_id as lead_id,
        {{ json_text('_raw', ['company_id']) }} as company_id,

        -- strings
        lower(trim(email)) as email,
        nullif(trim({{ json_text('_raw', ['first_name']) }}), '') as first_name,
        nullif(trim({{ json_text('_raw', ['last_name']) }}), '') as last_name,
        nullif(trim({{ json_text('_raw', ['title']) }}), '') as title,
        lower({{ json_text('_raw', ['lifecycle_stage']) }}) as lifecycle_stage,
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
    contact_id,
    lead_id,
    company_id,
    email,
    first_name,
    last_name,
    title,
    lifecycle_stage,
    owner,
    created_at,
    updated_at,
    _run_id,
    _ingested_at
from renamed
where recency_rank = 1
