-- Fee estimates per item and day (Product Fees v0), one row per (tenant_id,
-- asin, marketplace_id, fee_day). The structure is kept (referral rate, fixed
-- fees) so fees at another price are `referral_rate * price + fixed_fees`
-- (macros/sourcing/sourcing_fees_at_price.sql) without another API call.
with

source as (

    select * from {{ lake_source('sp_api', 'fee_estimates') }}

),

renamed as (

    select
        -- ids
        tenant_id,
        upper(asin) as asin,
        marketplace_id,

        -- strings
        upper(currency) as currency,

        -- numerics
        cast(nullif(trim(price), '') as numeric(18, 2)) as price,
        cast(nullif(trim(referral_fee), '') as numeric(18, 2)) as referral_fee,
        cast(nullif(trim(referral_rate), '') as numeric(9, 6)) as referral_rate,
        cast(nullif(trim(fba_fee), '') as numeric(18, 2)) as fba_fee,
        cast(nullif(trim(variable_closing_fee), '') as numeric(18, 2)) as variable_closing_fee,
        cast(nullif(trim(per_item_fee), '') as numeric(18, 2)) as per_item_fee,
        cast(nullif(trim(fixed_fees), '') as numeric(18, 2)) as fixed_fees,
        cast(nullif(trim(total_fees), '') as numeric(18, 2)) as total_fees,

        -- dates
        cast("day" as date) as fee_day,
        cast(fetched_at as {{ type_timestamptz() }}) as fetched_at,

        -- lineage
        _run_id,
        _ingested_at,

        {{ latest_version_rank('asin, marketplace_id, "day"') }} as recency_rank

    from source

)

select
    tenant_id,
    asin,
    marketplace_id,
    fee_day,
    currency,
    price,
    referral_fee,
    referral_rate,
    fba_fee,
    variable_closing_fee,
    per_item_fee,
    fixed_fees,
    total_fees,
    fetched_at,
    _run_id,
    _ingested_at
from renamed
where recency_rank = 1
