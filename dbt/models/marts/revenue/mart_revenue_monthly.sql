-- Stripe revenue per tenant, month (UTC) and currency, as the revenue
-- dashboard and serving.revenue_monthly read it: succeeded charges, what was
-- refunded of them, and Stripe's fees from the balance transactions.
--
-- Amounts stay in the currency's minor unit, as Stripe reports them (cents;
-- yen for a zero-decimal currency): integers, so both engines agree exactly,
-- and no division that is wrong for some currencies. Net is gross less
-- refunds less fees. A month is that of the charge (or of the fee's balance
-- transaction), not of the refund.
--
-- Incremental per tenant, delete+insert by tenant_id, like mart_lead_scores.
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='tenant_id',
        on_schema_change='append_new_columns'
    )
}}

{%- set only_tenant = is_incremental() and run_tenant_id() %}

with

charges as (

    select * from {{ ref('stg_stripe__charges') }}
    where status = 'succeeded'
    {%- if only_tenant %}
        and {{ run_tenant_filter() }}
    {%- endif %}

),

balance_transactions as (

    select * from {{ ref('stg_stripe__balance_transactions') }}
    {%- if only_tenant %}
    where {{ run_tenant_filter() }}
    {%- endif %}

),

charge_months as (

    select
        tenant_id,
        {{ utc_trunc_date('month', 'created_at') }} as month,
        currency,
        count(*) as charges,
        sum(amount) as gross_amount,
        sum(coalesce(amount_refunded, 0)) as refunded_amount,
        0 as fee_amount
    from charges
    group by 1, 2, 3

),

fee_months as (

    select
        tenant_id,
        {{ utc_trunc_date('month', 'created_at') }} as month,
        currency,
        0 as charges,
        0 as gross_amount,
        0 as refunded_amount,
        sum(coalesce(fee, 0)) as fee_amount
    from balance_transactions
    group by 1, 2, 3

),

months as (

    select * from charge_months
    union all
    select * from fee_months

)

select
    tenant_id,
    month,
    currency,
    cast(sum(charges) as bigint) as charges,
    cast(sum(gross_amount) as bigint) as gross_amount,
    cast(sum(refunded_amount) as bigint) as refunded_amount,
    cast(sum(fee_amount) as bigint) as fee_amount,
    cast(sum(gross_amount) - sum(refunded_amount) - sum(fee_amount) as bigint) as net_amount
from months
group by tenant_id, month, currency
