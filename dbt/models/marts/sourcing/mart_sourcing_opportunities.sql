-- Sourcing opportunities as serving, Superset and buyers read them: one row per
-- (tenant_id, asin) that a supplier price list matched, in the one score shape
-- (macros/scores/): an opportunity score 0-100 (the sum of the reasons' signed
-- points, clamped; null with status `unknown` when no margin can be computed),
-- its band in `grade` (A-D), the components, the reasons with their evidence,
-- and the estimate behind it: price, fees, landed cost, margin %, ROI,
-- estimated monthly units (with a low/high band) and revenue, competition,
-- price stability. `confidence` is `low` when the estimate is weak (no sales
-- rank, fewer offer days than the tenant's min_offer_days, or no fee
-- estimate). The best supplier carries its risk tier; `review_required` when
-- its review status needs a reviewer before buying (pending, lapsed, info
-- requested), or it is not in the supplier records at all.
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='tenant_id',
        on_schema_change='append_new_columns'
    )
}}

{%- set only_tenant = is_incremental() and run_tenant_id() %}
{%- set components = ['demand', 'margin', 'competition', 'stability', 'supplier'] %}
{%- set text = dbt.type_string() %}

with

costed as (

    select * from {{ ref('int_sourcing_opportunities_costed') }}
    {%- if only_tenant %}
    where {{ run_tenant_filter() }}
    {%- endif %}

),

reasons as (

    select * from {{ ref('int_sourcing_opportunity_reasons') }}
    {%- if only_tenant %}
    where {{ run_tenant_filter() }}
    {%- endif %}

),

totals as (

    select
        tenant_id,
        asin,
        sum(points) as total_points,
        {%- for component in components %}
        case
            when sum(case when component = '{{ component }}' and code not like '%_unknown' then 1 else 0 end) = 0
                then null
            else sum(case when component = '{{ component }}' then points else 0 end)
        end as {{ component }}_points,
        {%- endfor %}
        max(case when code = 'margin_unknown' then 1 else 0 end) as margin_unknown
    from reasons
    group by tenant_id, asin

),

folded as (

    {{ score_reasons('reasons', ['tenant_id', 'asin']) }}

),

scored as (

    select
        costed.*,
        totals.total_points,
        {%- for component in components %}
        totals.{{ component }}_points,
        {%- endfor %}
        totals.margin_unknown = 1 as is_unknown,
        folded.reasons,
        folded.reasons_json,
        costed.sales_rank is null
            or costed.offer_days < costed.min_offer_days
            or costed.fee_day is null as estimate_is_weak
    from costed
    inner join totals
        on costed.tenant_id = totals.tenant_id
        and costed.asin = totals.asin
    inner join folded
        on costed.tenant_id = folded.tenant_id
        and costed.asin = folded.asin

),

final as (

    select
        scored.*,
        case when not is_unknown then greatest(0, least(100, total_points)) end as score_value
    from scored

)

select
    tenant_id,
    asin,
    cast(marketplace_id as {{ text }}) as marketplace_id,
    cast(title as {{ text }}) as title,
    cast(brand as {{ text }}) as brand,
    cast(category as {{ text }}) as category,
    cast(currency as {{ text }}) as currency,
    cast(score_value as integer) as score,
    cast({{ score_band('score_value', 75, 50, 25) }} as {{ text }}) as grade,
    reasons,
    cast('sourcing_rules_v1' as {{ text }}) as score_model,
    cast(case when is_unknown then 'unknown' else 'scored' end as {{ text }}) as score_status,
    {%- for component in components %}
    cast({{ component }}_points as integer) as {{ component }}_score,
    {%- endfor %}
    cast(case when estimate_is_weak then 'low' else 'high' end as {{ text }}) as confidence,
    cast(price as numeric(18, 2)) as price,
    cast(price_basis as {{ text }}) as price_basis,
    cast(fees_per_unit as numeric(18, 2)) as fees_per_unit,
    cast(referral_rate as numeric(9, 6)) as referral_rate,
    cast(fixed_fees as numeric(18, 2)) as fixed_fees,
    cast(landed_cost as numeric(18, 2)) as landed_cost,
    cast(margin_per_unit as numeric(18, 2)) as margin_per_unit,
    margin_pct,
    roi_pct,
    cast(sales_rank as bigint) as sales_rank,
    est_monthly_units,
    est_monthly_units_low,
    est_monthly_units_high,
    est_monthly_revenue,
    est_monthly_profit,
    cast(offer_count as integer) as offer_count,
    cast(fba_offer_count as integer) as fba_offer_count,
    buy_box_share,
    price_cv,
    cast(offer_days as integer) as offer_days,
    cast(supplier_count as integer) as supplier_count,
    cast(supplier_id as {{ text }}) as supplier_id,
    cast(supplier_name as {{ text }}) as supplier_name,
    cast(supplier_sku as {{ text }}) as supplier_sku,
    cast(supplier_tier as {{ text }}) as supplier_tier,
    cast(supplier_review_status as {{ text }}) as supplier_review_status,
    coalesce(
        supplier_id is null
        or not supplier_known
        or supplier_review_status in ('pending', 'lapsed', 'info_requested'),
        true
    ) as review_required,
    cast(match_rule as {{ text }}) as match_rule,
    cast(unit_cost as numeric(18, 4)) as unit_cost,
    cast(cost_currency as {{ text }}) as cost_currency,
    cast(moq as integer) as moq,
    cast(lead_time_days as integer) as lead_time_days,
    reasons_json,
    cast('sourcing_rules_v1' as {{ text }}) as model_version,
    cast(config_version as {{ text }}) as config_version,
    cast('{{ run_started_at }}' as {{ type_timestamptz() }}) as scored_at
from final
