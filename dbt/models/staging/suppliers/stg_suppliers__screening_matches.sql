-- Screening matches the matcher found (suppliers/screening.py), one row per
-- (tenant_id, supplier_id, list_name, entry_id): the best-scoring name pair.
with

source as (

    select * from {{ lake_source('suppliers', 'screening_matches') }}

)

select
    tenant_id,
    supplier_id,
    supplier_name,
    list_name,
    entry_id,
    entry_name,
    matched_name,
    cast(score as {{ type_double() }}) as score,
    country_agrees,
    _run_id,
    cast(_ingested_at as {{ type_timestamptz() }}) as _ingested_at
from source
