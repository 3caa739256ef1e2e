-- Purchase orders and their receipts, one row per (tenant_id, po_id).
with

source as (

    select * from {{ lake_source('suppliers', 'purchase_orders') }}

),

renamed as (

    select
        -- ids
        tenant_id,
        po_id,
        supplier_id,

        -- numerics
        cast(amount as {{ type_double() }}) as amount,
        currency,
        cast(quantity as bigint) as quantity,
        cast(rejected_quantity as bigint) as rejected_quantity,

        -- dates
        cast(ordered_at as {{ type_timestamptz() }}) as ordered_at,
        cast(promised_at as {{ type_timestamptz() }}) as promised_at,
        cast(received_at as {{ type_timestamptz() }}) as received_at,

        -- lineage
        _source_file,
        _source_line,
        cast(_ingested_at as {{ type_timestamptz() }}) as _ingested_at

    from source

)

select * from renamed
