-- One row per (tenant_id, document_id, field): the reader keeps the best
-- candidate of each field, and the first ingested reading wins if a raw table
-- loaded by another job ever holds two.
with

source as (

    select * from {{ lake_source('supplier_docs', 'document_fields') }}

),

renamed as (

    select
        -- ids
        tenant_id,
        document_id,
        supplier_id,

        -- strings
        field,
        value,
        location,
        method,

        -- numerics
        cast(confidence as {{ type_double() }}) as confidence,
        cast(page as integer) as page,

        -- lineage
        _run_id,
        cast(_ingested_at as {{ type_timestamptz() }}) as _ingested_at,

        row_number() over (
            partition by tenant_id, document_id, field
            order by _ingested_at asc nulls last, confidence desc nulls last
        ) as reading_rank

    from source

)

select
    tenant_id,
    document_id,
    supplier_id,
    field,
    value,
    location,
    method,
    confidence,
    page,
    _run_id,
    _ingested_at
from renamed
where reading_rank = 1
