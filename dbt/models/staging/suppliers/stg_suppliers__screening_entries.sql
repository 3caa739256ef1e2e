-- Screening list entries, one row per (tenant_id, list_name, entry_id): a list
-- that repeats an entry keeps its last line.
with

source as (

    select * from {{ lake_source('suppliers', 'screening_entries') }}

),

renamed as (

    select
        tenant_id,
        list_name,
        entry_id,
        entry_schema,
        name,
        aliases,
        countries,
        _source_file,
        _source_line,
        cast(_ingested_at as {{ type_timestamptz() }}) as _ingested_at,
        row_number() over (
            partition by tenant_id, list_name, entry_id
            order by _source_line desc nulls last
        ) as recency_rank
    from source

)

select
    tenant_id,
    list_name,
    entry_id,
    entry_schema,
    name,
    aliases,
    countries,
    _source_file,
    _source_line,
    _ingested_at
from renamed
where recency_rank = 1
