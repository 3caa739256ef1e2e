-- The documents the tenant's policy requires of every supplier.
with

source as (

    select * from {{ lake_source('suppliers', 'required_documents') }}

)

select
    tenant_id,
    doc_type,
    check_name,
    check_number,
    cast(_ingested_at as {{ type_timestamptz() }}) as _ingested_at
from source
