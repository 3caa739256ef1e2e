-- Every reason of every supplier's risk, one row each: its component
-- (compliance, sanctions, delivery, country, concentration), a code and label,
-- its signed points (positive adds risk, negative lowers it; 0 for `unknown`
-- reasons that only say data is missing) and its evidence: the document, page
-- and field; the screening list and entry; or the orders it was computed from.
with

suppliers as (

    select * from {{ ref('stg_suppliers__suppliers') }}

),

policy as (

    select * from {{ ref('stg_suppliers__policy') }}

),

documents as (

    select * from {{ ref('int_supplier_documents_checked') }}

),

decisions as (

    select * from {{ ref('stg_suppliers__review_decisions') }}

),

-- Whether a reviewer confirmed a screening match or ruled it out: verdicts are
-- JSON written by suppliers/reviews.py with sorted keys. A join and an aggregate
-- per match rather than `exists (...)` in the select list, which Spark cannot
-- plan with this predicate (an internal error, "key not found", on Spark 4.3).
verdicts as (

    select
        matches.tenant_id,
        matches.supplier_id,
        matches.list_name,
        matches.entry_id,
        max(case when position(
            '{"entry_id": "' || matches.entry_id || '", "list_name": "'
            || matches.list_name || '", "verdict": "confirmed"}'
            in decisions.match_verdicts
        ) > 0 then 1 else 0 end) as confirmed_by,
        max(case when position(
            '{"entry_id": "' || matches.entry_id || '", "list_name": "'
            || matches.list_name || '", "verdict": "not_same"}'
            in decisions.match_verdicts
        ) > 0 then 1 else 0 end) as ruled_out_by
    from {{ ref('stg_suppliers__screening_matches') }} as matches
    inner join decisions
        on decisions.tenant_id = matches.tenant_id
        and decisions.supplier_id = matches.supplier_id
    group by matches.tenant_id, matches.supplier_id, matches.list_name, matches.entry_id

),

matches as (

    select
        matches.*,
        policy.sanctions_threshold,
        coalesce(verdicts.confirmed_by, 0) = 1 as confirmed,
        coalesce(verdicts.ruled_out_by, 0) = 1 as ruled_out
    from {{ ref('stg_suppliers__screening_matches') }} as matches
    inner join policy
        on matches.tenant_id = policy.tenant_id
    left join verdicts
        on verdicts.tenant_id = matches.tenant_id
        and verdicts.supplier_id = matches.supplier_id
        and verdicts.list_name = matches.list_name
        and verdicts.entry_id = matches.entry_id

),

lists as (

    select distinct tenant_id from {{ ref('stg_suppliers__screening_entries') }}

),

orders as (

    select * from {{ ref('stg_suppliers__purchase_orders') }}

),

delivery as (

    select
        orders.tenant_id,
        orders.supplier_id,
        count(*) as orders_received,
        avg(case when orders.received_at <= orders.promised_at then 1.0 else 0.0 end)
            as on_time_rate,
        sum(orders.rejected_quantity) * 1.0 / nullif(sum(orders.quantity), 0) as defect_rate,
        stddev_samp(
            ({{ epoch_seconds('orders.received_at') }} - {{ epoch_seconds('orders.ordered_at') }})
            / 86400.0
        ) as lead_time_stddev_days,
        min(orders.po_id) as first_po,
        max(orders.po_id) as last_po
    from orders
    where orders.received_at is not null and orders.promised_at is not null
    group by orders.tenant_id, orders.supplier_id

),

spend as (

    select
        tenant_id,
        supplier_id,
        sum(coalesce(amount, 0)) as supplier_spend,
        count(*) as orders_placed
    from orders
    group by tenant_id, supplier_id

),

tenant_spend as (

    select tenant_id, sum(supplier_spend) as total_spend
    from spend
    group by tenant_id

),

country_risk as (

    select * from {{ ref('supplier_country_risk') }}

),

reasons as (

    -- compliance: each required document
    select
        tenant_id,
        supplier_id,
        'compliance' as component,
        case status
            when 'missing' then doc_type || '_missing'
            when 'expired' then doc_type || '_expired'
            when 'expiring' then doc_type || '_expiring_' || cast(expiring_within_days as {{ dbt.type_string() }}) || 'd'
            else doc_type || '_valid'
        end as code,
        case status
            when 'missing' then 'required ' || replace(doc_type, '_', ' ') || ' missing'
            when 'expired' then replace(doc_type, '_', ' ') || ' expired on '
                || cast(expiry_date as {{ dbt.type_string() }})
            when 'expiring' then replace(doc_type, '_', ' ') || ' expires within '
                || cast(expiring_within_days as {{ dbt.type_string() }}) || ' days'
            else replace(doc_type, '_', ' ') || ' on file and valid'
        end as label,
        case status
            when 'missing' then 20
            when 'expired' then 30
            when 'expiring' then
                case when expiring_within_days <= 1 then 20 when expiring_within_days <= 14 then 12 else 6 end
            else -5
        end as points,
        case
            when document_id is null then 'policy:required_documents#' || doc_type
            when expiry_date is not null then 'document:' || document_id || '#p'
                || cast(coalesce(expiry_page, 1) as {{ dbt.type_string() }}) || ':expiry_date'
            else 'document:' || document_id
        end as evidence_ref
    from documents

    union all

    select
        tenant_id,
        supplier_id,
        'compliance',
        doc_type || '_name_mismatch',
        'legal name on the ' || replace(doc_type, '_', ' ') || ' differs from the supplier record',
        10,
        'document:' || document_id || '#p' || cast(coalesce(name_page, 1) as {{ dbt.type_string() }}) || ':legal_name'
    from documents
    where name_mismatch

    union all

    select
        tenant_id,
        supplier_id,
        'compliance',
        doc_type || '_number_mismatch',
        'number on the ' || replace(doc_type, '_', ' ') || ' differs from the supplier record',
        10,
        'document:' || document_id || '#p' || cast(coalesce(number_page, 1) as {{ dbt.type_string() }}) || ':document_number'
    from documents
    where number_mismatch

    union all

    -- sanctions: matches at or above the tenant's threshold, not ruled out
    select
        tenant_id,
        supplier_id,
        'sanctions',
        case when confirmed then 'sanctions_confirmed' else 'sanctions_match' end,
        case when confirmed then 'confirmed by a reviewer: ' else 'may be ' end
            || entry_name || ' on ' || list_name
            || ' (score ' || cast(round(cast(score as numeric), 2) as {{ dbt.type_string() }}) || ')',
        100,
        'screening:' || list_name || '/' || entry_id
    from matches
    where not ruled_out and (confirmed or score >= sanctions_threshold)

    union all

    select
        tenant_id,
        supplier_id,
        'sanctions',
        'sanctions_weak_match',
        'weak resemblance to ' || entry_name || ' on ' || list_name,
        5,
        'screening:' || list_name || '/' || entry_id
    from matches
    where not ruled_out and not confirmed and score < sanctions_threshold

    union all

    select
        suppliers.tenant_id,
        suppliers.supplier_id,
        'sanctions',
        'sanctions_unknown',
        'no screening list loaded',
        0,
        'inbox:screening/'
    from suppliers
    where not exists (select 1 from lists where lists.tenant_id = suppliers.tenant_id)

    union all

    -- delivery
    select
        delivery.tenant_id,
        delivery.supplier_id,
        'delivery',
        'late_deliveries',
        cast(cast(round(cast(100 * (1 - delivery.on_time_rate) as numeric), 0) as integer) as {{ dbt.type_string() }})
            || '% of deliveries late',
        cast(round(cast(40 * (1 - delivery.on_time_rate) as numeric), 0) as integer),
        'purchase_orders:' || delivery.first_po || '..' || delivery.last_po
            || ' (' || cast(delivery.orders_received as {{ dbt.type_string() }}) || ' orders)'
    from delivery
    inner join policy on delivery.tenant_id = policy.tenant_id
    where delivery.orders_received >= policy.min_orders and delivery.on_time_rate < 0.95

    union all

    select
        delivery.tenant_id,
        delivery.supplier_id,
        'delivery',
        'on_time',
        'delivers on time',
        -5,
        'purchase_orders:' || delivery.first_po || '..' || delivery.last_po
            || ' (' || cast(delivery.orders_received as {{ dbt.type_string() }}) || ' orders)'
    from delivery
    inner join policy on delivery.tenant_id = policy.tenant_id
    where delivery.orders_received >= policy.min_orders and delivery.on_time_rate >= 0.95

    union all

    select
        delivery.tenant_id,
        delivery.supplier_id,
        'delivery',
        'defects',
        cast(round(cast(100 * delivery.defect_rate as numeric), 1) as {{ dbt.type_string() }})
            || '% of units rejected',
        cast(least(round(cast(300 * delivery.defect_rate as numeric), 0), 30) as integer),
        'purchase_orders:' || delivery.first_po || '..' || delivery.last_po
            || ' (' || cast(delivery.orders_received as {{ dbt.type_string() }}) || ' orders)'
    from delivery
    inner join policy on delivery.tenant_id = policy.tenant_id
    where delivery.orders_received >= policy.min_orders and delivery.defect_rate >= 0.02

    union all

    select
        delivery.tenant_id,
        delivery.supplier_id,
        'delivery',
        'lead_time_variance',
        'lead times vary by ' || cast(cast(round(cast(delivery.lead_time_stddev_days as numeric), 0) as integer) as {{ dbt.type_string() }})
            || ' days (standard deviation)',
        10,
        'purchase_orders:' || delivery.first_po || '..' || delivery.last_po
            || ' (' || cast(delivery.orders_received as {{ dbt.type_string() }}) || ' orders)'
    from delivery
    inner join policy on delivery.tenant_id = policy.tenant_id
    where delivery.orders_received >= policy.min_orders and delivery.lead_time_stddev_days > 7

    union all

    select
        suppliers.tenant_id,
        suppliers.supplier_id,
        'delivery',
        'delivery_unknown',
        'fewer than ' || cast(policy.min_orders as {{ dbt.type_string() }}) || ' received orders',
        0,
        'purchase_orders:' || suppliers.supplier_id
    from suppliers
    inner join policy on suppliers.tenant_id = policy.tenant_id
    left join delivery
        on suppliers.tenant_id = delivery.tenant_id
        and suppliers.supplier_id = delivery.supplier_id
    where coalesce(delivery.orders_received, 0) < policy.min_orders

    union all

    -- country risk
    select
        suppliers.tenant_id,
        suppliers.supplier_id,
        'country',
        case when suppliers.country is null then 'country_unknown' else 'country_risk' end,
        case
            when suppliers.country is null then 'no country on the supplier record'
            else suppliers.country || ': ' || country_risk.description
        end,
        coalesce(country_risk.risk_points, 0),
        'supplier_country_risk:' || coalesce(suppliers.country, '?')
    from suppliers
    left join country_risk on suppliers.country = country_risk.country
    where suppliers.country is null or country_risk.country is not null

    union all

    -- concentration
    select
        spend.tenant_id,
        spend.supplier_id,
        'concentration',
        'spend_concentration',
        cast(cast(round(cast(100 * spend.supplier_spend / tenant_spend.total_spend as numeric), 0) as integer) as {{ dbt.type_string() }})
            || '% of the tenant''s spend',
        15,
        'purchase_orders:supplier=' || spend.supplier_id
            || ' (' || cast(spend.orders_placed as {{ dbt.type_string() }}) || ' orders)'
    from spend
    inner join tenant_spend on spend.tenant_id = tenant_spend.tenant_id
    inner join policy on spend.tenant_id = policy.tenant_id
    where tenant_spend.total_spend > 0
        and spend.supplier_spend / tenant_spend.total_spend >= policy.concentration_share

)

select
    reasons.*,
    row_number() over (
        partition by tenant_id, supplier_id
        order by points desc, code asc
    ) as reason_order
from reasons
