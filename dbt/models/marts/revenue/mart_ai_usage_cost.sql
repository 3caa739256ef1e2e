-- AI usage and its cost per tenant, month (UTC), model and feature, as the AI
-- cost panel and serving.ai_usage_cost read them. A request without a feature
-- counts under '(none)', so the key never holds a null.
--
-- Cost is summed as the exact decimal staging holds, then served as a double.
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

usage as (

    select * from {{ ref('stg_ai_usage__usage') }}
    {%- if only_tenant %}
    where {{ run_tenant_filter() }}
    {%- endif %}

)

select
    tenant_id,
    {{ utc_trunc_date('month', 'requested_at') }} as month,
    model,
    coalesce(feature, '(none)') as feature,
    cast(count(*) as bigint) as requests,
    cast(sum(coalesce(input_tokens, 0)) as bigint) as input_tokens,
    cast(sum(coalesce(output_tokens, 0)) as bigint) as output_tokens,
    cast(sum(coalesce(cost_usd, 0)) as {{ type_double() }}) as cost_usd
from usage
group by 1, 2, 3, 4
