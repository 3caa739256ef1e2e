-- One row per CRM activity (email open, call, meeting, ...), per tenant.
-- The latest version per key and tenant (macros/staging/latest_version_rank.sql).
with

source as (

    select * from {{ lake_source('crm_api', 'activities') }}

),

renamed as (

    select
        -- tenant
        tenant_id,

        -- ids
        id as activity_id,
        lead_id as lead_id,
        {{ json_text('_raw', ['contact_id']) }} as contact_id,

        -- strings
        lower(type) as activity_type,
        {{ json_text('_raw', ['subject']) }} as subject,
        {{ json_text('_raw', ['owner']) }} as owner,

        -- dates
        cast({{ json_text('_raw', ['occurred_at']) }} as {{ type_timestamptz() }}) as occurred_at,
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
    activity_id,
    lead_id,
    contact_id,
    activity_type,
    subject,
    owner,
    occurred_at,
    created_at,
    updated_at,
    _run_id,
    _ingested_at
from renamed
where recency_rank = 1
