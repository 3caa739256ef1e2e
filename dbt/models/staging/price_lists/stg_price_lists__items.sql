-- Supplier price-list rows, one per (tenant_id, source_file, supplier_id,
-- supplier_sku): landing refuses a repeated SKU within a file (quarantined with
-- the first line named) and checks every identifier, cost and currency.
with

source as (

    select * from {{ lake_source('price_lists', 'items') }}

),

renamed as (

    select
        -- ids
        tenant_id,
        supplier_id,
        supplier_sku,
        upc,
        ean,
        upper(asin) as asin,

        -- strings
        upper(currency) as currency,

        -- numerics
        cast(unit_cost as numeric(18, 4)) as unit_cost,
        moq,
        lead_time_days,

        -- lineage
        _source_file as source_file,
        _source_line as source_line,
        cast(_ingested_at as {{ type_timestamptz() }}) as _ingested_at

    from source

)

select * from renamed
