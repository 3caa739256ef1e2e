-- One row per (tenant_id, document_id). The lake holds each document once per
-- tenant, but raw.supplier_docs__documents on Postgres is loaded by another
-- job, so the first ingested row wins here too (the first reading of a file is
-- the one its fields belong to).
with

source as (

    select * from {{ lake_source('supplier_docs', 'documents') }}

),

renamed as (

    select
        -- ids
        tenant_id,
        document_id,
        supplier_id,

        -- strings
        file_name,
        path,
        media_type,
        doc_type,
        extraction_method,

        -- numerics
        cast(size_bytes as bigint) as size_bytes,
        cast(pages as integer) as pages,
        cast(doc_type_confidence as {{ type_double() }}) as doc_type_confidence,
        cast(text_chars as bigint) as text_chars,

        -- dates
        cast(received_at as {{ type_timestamptz() }}) as received_at,

        -- lineage
        _run_id,
        cast(_ingested_at as {{ type_timestamptz() }}) as _ingested_at,

        row_number() over (
            partition by tenant_id, document_id
            order by _ingested_at asc nulls last, path asc nulls last
        ) as reading_rank

    from source

)

select
    tenant_id,
    document_id,
    supplier_id,
    file_name,
    path,
    media_type,
    doc_type,
    extraction_method,
    size_bytes,
    pages,
    doc_type_confidence,
    text_chars,
    received_at,
    _run_id,
    _ingested_at
from renamed
where reading_rank = 1
