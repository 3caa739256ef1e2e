-- One row per form submission on the tenant's site, per tenant.
-- The latest version per key and tenant (macros/staging/latest_version_rank.sql).
with

source as (

    select * from {{ lake_source('cms_forms', 'submissions') }}

),

renamed as (

    select
        -- tenant
        tenant_id,

        -- ids
        id as submission_id,

        -- strings
        lower(form_type) as form_type,
        lower(trim(email)) as email,
        nullif(trim({{ json_text('_raw', ['name']) }}), '') as submitter_name,
        nullif(trim({{ json_text('_raw', ['company']) }}), '') as company,
        {{ json_text('_raw', ['page_url']) }} as page_url,
        lower({{ json_text('_raw', ['utm_source']) }}) as utm_source,
        lower({{ json_text('_raw', ['utm_medium']) }}) as utm_medium,
        {{ json_text('_raw', ['utm_campaign']) }} as utm_campaign,
        nullif(upper(trim({{ json_text('_raw', ['country']) }})), '') as country,

        -- booleans
        cast({{ json_text('_raw', ['consent_marketing']) }} as boolean) as has_marketing_consent,

        -- dates
        cast(submitted_at as {{ type_timestamptz() }}) as submitted_at,

        -- lineage
        _run_id,
        _ingested_at,

        {{ latest_version_rank('id') }} as recency_rank

    from source

)

select
    tenant_id,
    submission_id,
    form_type,
    email,
    submitter_name,
    company,
    page_url,
    utm_source,
    utm_medium,
    utm_campaign,
    country,
    has_marketing_consent,
    submitted_at,
    _run_id,
    _ingested_at
from renamed
where recency_rank = 1
