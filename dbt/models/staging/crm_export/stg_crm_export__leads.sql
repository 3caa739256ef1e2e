-- One row per (tenant_id, lead_id): the lake is already de-duplicated per
-- tenant, but raw.crm_export__leads on Postgres is loaded by another job, so the
-- latest ingested row wins here too.
with

source as (

    select * from {{ lake_source('crm_export', 'leads') }}

),

renamed as (

    select
        -- ids
        tenant_id,
        lead_id,

        -- strings
        lower(trim(email)) as email,
        nullif(trim(first_name), '') as first_name,
        nullif(trim(last_name), '') as last_name,
        nullif(trim(company), '') as company,
        nullif(trim(title), '') as title,
        nullif(lower(trim(industry)), '') as industry,
        {{ normalize_company_size('company_size') }} as company_size,
        nullif(trim(company_size), '') as company_size_as_exported,
        nullif(upper(trim(country)), '') as country,
        nullif(lower(trim(source)), '') as source,
        lower(trim(status)) as status,
        coalesce(custom_attributes, '{}') as custom_attributes,

        -- dates
        cast(created_at as {{ type_timestamptz() }}) as created_at,

        -- lineage
        _source_file,
        _source_line,
        cast(_ingested_at as {{ type_timestamptz() }}) as _ingested_at,

        row_number() over (
            partition by tenant_id, lead_id
            -- explicit null order: Postgres sorts nulls first on desc, DuckDB last
            order by
                _ingested_at desc nulls last,
                _source_file desc nulls last,
                _source_line desc nulls last
        ) as recency_rank

    from source

)

select
    tenant_id,
    lead_id,
    email,
    first_name,
    last_name,
    company,
    title,
    industry,
    company_size,
    company_size_as_exported,
    country,
    source,
    status,
    custom_attributes,
    created_at,
    _source_file,
    _source_line,
    _ingested_at
from renamed
where recency_rank = 1
