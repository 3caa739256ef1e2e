-- One row per GA4 report row (day, page, source/medium, client), per tenant.
-- The latest version per key and tenant (macros/staging/latest_version_rank.sql).
with

source as (

    select * from {{ lake_source('ga4', 'report_rows') }}

),

renamed as (

    select
        -- tenant
        tenant_id,

        -- ids
        id as report_row_id,
        {{ json_text('_raw', ['property_id']) }} as property_id,
        "clientId" as client_id,
        nullif("userId", '(not set)') as user_id,

        -- strings
        "pagePath" as page_path,
        lower("sessionSourceMedium") as session_source_medium,

        -- numerics
        sessions as sessions,
        "totalUsers" as total_users,
        "screenPageViews" as screen_page_views,
        conversions as conversions,

        -- dates
        cast(substr(date, 1, 4) || '-' || substr(date, 5, 2) || '-' || substr(date, 7, 2) as date) as report_date,

        -- lineage
        _run_id,
        _ingested_at,

        {{ latest_version_rank('id') }} as recency_rank

    from source

)

select
    tenant_id,
    report_row_id,
    property_id,
    client_id,
    user_id,
    page_path,
    session_source_medium,
    sessions,
    total_users,
    screen_page_views,
    conversions,
    report_date,
    _run_id,
    _ingested_at
from renamed
where recency_rank = 1
