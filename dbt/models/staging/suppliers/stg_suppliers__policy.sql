-- The tenant's supplier policy (suppliers/policy.py), one row per tenant.
with

source as (

    select * from {{ lake_source('suppliers', 'policy') }}

)

select
    tenant_id,
    config_version,
    cast(sanctions_threshold as {{ type_double() }}) as sanctions_threshold,
    expiry_warning_days,
    cast(tier_medium as integer) as tier_medium,
    cast(tier_high as integer) as tier_high,
    cast(tier_critical as integer) as tier_critical,
    cast(review_days_critical as integer) as review_days_critical,
    cast(review_days_high as integer) as review_days_high,
    cast(review_days_medium as integer) as review_days_medium,
    cast(rereview_days as integer) as rereview_days,
    cast(min_orders as integer) as min_orders,
    cast(concentration_share as {{ type_double() }}) as concentration_share,
    cast(as_of as date) as as_of,
    cast(_ingested_at as {{ type_timestamptz() }}) as _ingested_at
from source
