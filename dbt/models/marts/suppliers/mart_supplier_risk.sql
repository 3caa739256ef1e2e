-- Supplier risk as serving, Superset and reviewers read it: one row per
-- (tenant_id, supplier_id) in the one score shape (macros/scores/): an overall
-- risk 0-100 (higher is riskier; the sum of the reasons' signed points,
-- clamped), its tier in `grade` (low, medium, high, critical by the tenant's
-- policy), the component risks (null when unknown), the reasons with their
-- evidence, and the review status and due date. A sanctions match at or above
-- the tenant's threshold makes the supplier critical until a reviewer rules
-- it out; a confirmed match blocks approval. `risk_version` is what a
-- reviewer's decision must name (a stale one is refused).
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='tenant_id',
        on_schema_change='append_new_columns'
    )
}}

{%- set only_tenant = is_incremental() and run_tenant_id() %}
{%- set components = ['compliance', 'sanctions', 'delivery', 'country', 'concentration'] %}

with

suppliers as (

    select * from {{ ref('stg_suppliers__suppliers') }}
    {%- if only_tenant %}
    where {{ run_tenant_filter() }}
    {%- endif %}

),

policy as (

    select
        *,
        coalesce(as_of, {{ utc_date('current_timestamp') }}) as risk_as_of
    from {{ ref('stg_suppliers__policy') }}

),

reasons as (

    select * from {{ ref('int_supplier_risk_reasons') }}
    {%- if only_tenant %}
    where {{ run_tenant_filter() }}
    {%- endif %}

),

documents as (

    select * from {{ ref('int_supplier_documents_checked') }}
    {%- if only_tenant %}
    where {{ run_tenant_filter() }}
    {%- endif %}

),

decisions as (

    select
        *,
        row_number() over (
            partition by tenant_id, supplier_id order by decision_id desc
        ) as recency_rank
    from {{ ref('stg_suppliers__review_decisions') }}

),

totals as (

    select
        tenant_id,
        supplier_id,
        sum(points) as total_points,
        {%- for component in components %}
        case
            when sum(case when component = '{{ component }}' and code not like '%_unknown' then 1 else 0 end) = 0
                then null
            else greatest(0, least(100, sum(case when component = '{{ component }}' then points else 0 end)))
        end as {{ component }}_risk,
        {%- endfor %}
        max(case when code = 'sanctions_match' then 1 else 0 end) as sanctions_hit,
        max(case when code = 'sanctions_confirmed' then 1 else 0 end) as sanctions_confirmed,
        sum(case when code like '%_unknown' then 0 else 1 end) as known_reasons
    from reasons
    group by tenant_id, supplier_id

),

folded as (

    {{ score_reasons('reasons', ['tenant_id', 'supplier_id']) }}

),

document_list as (

    select
        tenant_id,
        supplier_id,
        '[' || {{ dbt.listagg(
            measure="'{\"doc_type\":' || " ~ score_json_string('doc_type')
                ~ " || ',\"status\":' || " ~ score_json_string('status')
                ~ " || ',\"document_id\":' || " ~ score_json_string('document_id')
                ~ " || ',\"file_name\":' || " ~ score_json_string('file_name')
                ~ " || ',\"expiry_date\":' || " ~ score_json_string('cast(expiry_date as ' ~ dbt.type_string() ~ ')')
                ~ " || '}'",
            delimiter_text="','",
            order_by_clause="order by doc_type"
        ) }} || ']' as documents_json,
        max(case when status = 'expired' then expiry_date end) as last_expired_on,
        sum(case when status in ('missing', 'expired') then 1 else 0 end) as document_gaps
    from documents
    group by tenant_id, supplier_id

),

scored as (

    select
        suppliers.tenant_id,
        suppliers.supplier_id,
        suppliers.legal_name,
        suppliers.country,
        totals.known_reasons > 0 as is_known,
        {%- for component in components %}
        totals.{{ component }}_risk,
        {%- endfor %}
        greatest(0, least(100, totals.total_points)) as risk_score,
        totals.sanctions_hit = 1 or totals.sanctions_confirmed = 1 as sanctions_hit,
        totals.sanctions_confirmed = 1 as sanctions_confirmed,
        document_list.last_expired_on,
        coalesce(document_list.document_gaps, 0) as document_gaps,
        coalesce(document_list.documents_json, '[]') as documents_json,
        coalesce(folded.reasons, '') as reasons,
        coalesce(folded.reasons_json, '[]') as reasons_json,
        policy.config_version,
        policy.risk_as_of,
        policy.tier_medium,
        policy.tier_high,
        policy.tier_critical,
        policy.review_days_critical,
        policy.review_days_high,
        policy.review_days_medium,
        policy.rereview_days
    from suppliers
    inner join policy on suppliers.tenant_id = policy.tenant_id
    left join totals
        on suppliers.tenant_id = totals.tenant_id
        and suppliers.supplier_id = totals.supplier_id
    left join folded
        on suppliers.tenant_id = folded.tenant_id
        and suppliers.supplier_id = folded.supplier_id
    left join document_list
        on suppliers.tenant_id = document_list.tenant_id
        and suppliers.supplier_id = document_list.supplier_id

),

tiered as (

    select
        scored.*,
        case
            when scored.sanctions_hit then 'critical'
            when not scored.is_known then null
            when scored.risk_score >= scored.tier_critical then 'critical'
            when scored.risk_score >= scored.tier_high then 'high'
            when scored.risk_score >= scored.tier_medium then 'medium'
            else 'low'
        end as tier
    from scored

),

reviewed as (

    select
        tiered.*,
        decisions.decision as last_decision,
        decisions.decision_id as last_decision_id,
        decisions.decided_at as last_decided_at,
        case
            when tiered.sanctions_confirmed then 'blocked'
            -- an approval lapses when a required document expired since, or a new
            -- sanctions match appeared
            when decisions.decision = 'approve' and (
                tiered.last_expired_on >= {{ utc_date('decisions.decided_at') }}
                or tiered.sanctions_hit
            ) then 'lapsed'
            when decisions.decision = 'approve' then 'approved'
            when decisions.decision = 'reject' then 'rejected'
            when decisions.decision = 'request_info' then 'info_requested'
            when tiered.tier in ('medium', 'high', 'critical') then 'pending'
            -- whatever the score, a required document missing or expired needs
            -- someone to ask the supplier for it
            when tiered.document_gaps > 0 then 'pending'
            else 'not_required'
        end as review_status
    from tiered
    left join decisions
        on tiered.tenant_id = decisions.tenant_id
        and tiered.supplier_id = decisions.supplier_id
        and decisions.recency_rank = 1

)

select
    tenant_id,
    supplier_id,
    legal_name,
    country,
    cast(case when is_known or sanctions_hit then risk_score end as integer) as score,
    cast(tier as {{ dbt.type_string() }}) as grade,
    reasons,
    cast('supplier_rules_v1' as {{ dbt.type_string() }}) as score_model,
    cast(case when is_known or sanctions_hit then 'scored' else 'unknown' end as {{ dbt.type_string() }})
        as score_status,
    {%- for component in components %}
    cast({{ component }}_risk as integer) as {{ component }}_risk,
    {%- endfor %}
    sanctions_hit,
    cast(review_status as {{ dbt.type_string() }}) as review_status,
    case
        when review_status in ('approved') then cast(last_decided_at as date) + rereview_days
        when review_status in ('rejected', 'not_required') then null
        when tier = 'critical' then risk_as_of + review_days_critical
        when tier = 'high' then risk_as_of + review_days_high
        when tier = 'medium' then risk_as_of + review_days_medium
        -- low risk, queued for a missing or expired document
        when review_status = 'pending' then risk_as_of + review_days_medium
        else risk_as_of + rereview_days
    end as review_due_date,
    cast(last_decision as {{ dbt.type_string() }}) as last_decision,
    cast(last_decision_id as bigint) as last_decision_id,
    last_decided_at,
    documents_json,
    cast(substr(md5(
        coalesce(cast(risk_score as {{ dbt.type_string() }}), '') || '|' || coalesce(tier, '')
        || '|' || reasons_json
    ), 1, 16) as {{ dbt.type_string() }}) as risk_version,
    reasons_json,
    cast('supplier_rules_v1' as {{ dbt.type_string() }}) as model_version,
    cast(config_version as {{ dbt.type_string() }}) as config_version,
    cast('{{ run_started_at }}' as {{ type_timestamptz() }}) as scored_at
from reviewed
