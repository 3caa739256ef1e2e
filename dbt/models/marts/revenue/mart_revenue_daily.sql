-- Revenue per tenant, day (UTC) and currency from Stripe charges: what was
-- charged, captured, refunded and kept. Incremental by day: a tenant's run
-- rebuilds its own days (run_tenant_filter) and a backfill only the days of its
-- window (run_window_filter, macros/run_window.sql); the other days keep their
-- rows. Amounts are in the currency's minor unit, as Stripe sends them.
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['tenant_id', 'revenue_date', 'currency'],
        on_schema_change='append_new_columns'
    )
}}

with

charges as (

    select * from {{ ref('stg_stripe__charges') }}
    {%- if is_incremental() %}
    where {{ run_tenant_filter() }}
        and {{ run_window_filter(utc_date('created_at')) }}
    {%- endif %}

)

select
    tenant_id,
    {{ utc_date('created_at') }} as revenue_date,
    currency,
    count(*) as charges,
    sum(case when status = 'succeeded' then 1 else 0 end) as charges_succeeded,
    sum(case when status = 'succeeded' then amount else 0 end) as amount_charged,
    sum(case when status = 'succeeded' then amount_refunded else 0 end) as amount_refunded,
    sum(case when status = 'succeeded' then amount - amount_refunded else 0 end) as amount_net
from charges
group by tenant_id, {{ utc_date('created_at') }}, currency
