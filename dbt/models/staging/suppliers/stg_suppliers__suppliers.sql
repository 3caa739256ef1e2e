-- The tenant's suppliers, one row per (tenant_id, supplier_id): landing already
-- refuses a repeated id within the file (quarantined with the first line named).
with

source as (

    select * from {{ lake_source('suppliers', 'suppliers') }}

),

renamed as (

    select
        -- ids
        tenant_id,
        supplier_id,

        -- strings
        legal_name,
        coalesce(aliases, '') as aliases,
        upper(country) as country,
        coalesce(attributes, '{}') as attributes,

        -- lineage
        _source_file,
        _source_line,
        cast(_ingested_at as {{ type_timestamptz() }}) as _ingested_at

    from source

)

select * from renamed
