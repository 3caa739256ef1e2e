-- Every price-list row matched to the tenant's catalog items in its marketplace
-- (config/sourcing: marketplace_id), by identifier in this order: the ASIN
-- exactly, else the UPC, else the EAN; only the best rule a row matches is
-- kept (a UPC shared by two ASINs matches both), and `match_rule` says which.
-- Each match carries its landed cost in the marketplace currency (unit cost
-- converted, plus freight per kg of the item's weight, plus duty on the cost)
-- and its supplier's risk tier and review status (mart_supplier_risk).
with

items as (

    select * from {{ ref('stg_price_lists__items') }}

),

assumptions as (

    select * from {{ ref('stg_price_lists__assumptions') }}

),

marketplaces as (

    select distinct tenant_id, marketplace_id, currency from assumptions

),

catalog as (

    select catalog.*
    from {{ ref('stg_sp_api__catalog_items') }} as catalog
    inner join marketplaces
        on catalog.tenant_id = marketplaces.tenant_id
        and catalog.marketplace_id = marketplaces.marketplace_id

),

candidates as (

    {%- for rule, rank in [('asin', 1), ('upc', 2), ('ean', 3)] %}
    select
        items.tenant_id,
        items.source_file,
        items.source_line,
        items.supplier_id,
        items.supplier_sku,
        catalog.asin,
        '{{ rule }}' as match_rule,
        {{ rank }} as rule_rank
    from items
    inner join catalog
        on items.tenant_id = catalog.tenant_id
        and items.{{ rule }} = catalog.{{ rule }}
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- endfor %}

),

best_rule as (

    select
        candidates.*,
        min(rule_rank) over (
            partition by tenant_id, source_file, supplier_id, supplier_sku
        ) as best_rank
    from candidates

),

matched as (

    select distinct
        tenant_id, source_file, source_line, supplier_id, supplier_sku, asin, match_rule
    from best_rule
    where rule_rank = best_rank

),

suppliers as (

    select tenant_id, supplier_id, legal_name, grade as tier, review_status, reasons
    from {{ ref('mart_supplier_risk') }}

),

costed as (

    select
        matched.tenant_id,
        matched.asin,
        matched.supplier_id,
        matched.supplier_sku,
        matched.source_file,
        matched.source_line,
        matched.match_rule,
        items.unit_cost,
        items.currency as cost_currency,
        items.moq,
        items.lead_time_days,
        assumptions.currency,
        assumptions.config_version,
        assumptions.min_offer_days,
        catalog.item_weight_kg,
        items.unit_cost * assumptions.fx_rate as unit_cost_converted,
        coalesce(cast(catalog.item_weight_kg as numeric(18, 4)), 0) * assumptions.freight_per_kg
            as freight_cost,
        items.unit_cost * assumptions.fx_rate * assumptions.duty_rate as duty_cost,
        suppliers.legal_name as supplier_name,
        suppliers.tier as supplier_tier,
        suppliers.review_status as supplier_review_status,
        suppliers.reasons as supplier_reasons,
        suppliers.supplier_id is not null as supplier_known
    from matched
    inner join items
        on matched.tenant_id = items.tenant_id
        and matched.source_file = items.source_file
        and matched.supplier_id = items.supplier_id
        and matched.supplier_sku = items.supplier_sku
    inner join assumptions
        on items.tenant_id = assumptions.tenant_id
        and items.currency = assumptions.cost_currency
    inner join catalog
        on matched.tenant_id = catalog.tenant_id
        and matched.asin = catalog.asin
    left join suppliers
        on matched.tenant_id = suppliers.tenant_id
        and matched.supplier_id = suppliers.supplier_id

)

select
    *,
    cast(unit_cost_converted + freight_cost + duty_cost as numeric(18, 2)) as landed_cost,
    -- rejected or blocked suppliers are never the one to buy from
    coalesce(supplier_review_status in ('blocked', 'rejected'), false) as supplier_blocked,
    case supplier_tier
        when 'low' then 1 when 'medium' then 2 when 'high' then 3 when 'critical' then 4
        else 5
    end as tier_rank
from costed
