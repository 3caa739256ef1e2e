-- The tenant's sourcing assumptions (config/sourcing/<tenant>.yaml), one row per
-- (tenant_id, cost_currency): the marketplace, the rate of that currency into the
-- marketplace's, freight per kg and duty.
with

source as (

    select * from {{ lake_source('price_lists', 'assumptions') }}

),

renamed as (

    select
        -- ids
        tenant_id,
        marketplace_id,

        -- strings
        config_version,
        upper(currency) as currency,
        upper(cost_currency) as cost_currency,

        -- numerics
        cast(fx_rate as numeric(18, 6)) as fx_rate,
        cast(freight_per_kg as numeric(18, 4)) as freight_per_kg,
        cast(duty_rate as numeric(9, 6)) as duty_rate,
        min_offer_days,

        -- lineage
        cast(_ingested_at as {{ type_timestamptz() }}) as _ingested_at

    from source

)

select * from renamed
