-- One row per (tenant_id, lead_id): what the lead model may learn from (fit
-- attributes, custom attributes) and what it must learn (the outcome), kept
-- apart. The status is read here for the label only and never leaves as a
-- feature (the model never sees it; docs/scoring.md).
--
-- Label:
--   positive  status `converted`, a won deal of the lead, or a Stripe customer
--             with the lead's email (else its domain and full name);
--   negative  status `unqualified`, a lost deal, or still open 90 days after
--             creation (measured against the tenant's newest lead, as the rules
--             score does, so a rebuild gives the same labels);
--   open      otherwise: scored, not learned from.
-- `features_as_of` is when the outcome was known (else the tenant's newest
-- lead): engagement after it would tell the model the answer.

-- A table, incremental per tenant (delete+insert by tenant_id, like the marts),
-- not a view: the lead model reads one tenant's rows of it per fit, and through a
-- view each read recomputed the whole chain over every tenant's lake files (2.2 s
-- a tenant at 100 tenants against 0.6 s at 3: the model fit grew with tenants
-- squared; bench/RESULTS.md "End to end"). Built for the run's tenants only.
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='tenant_id',
        on_schema_change='append_new_columns'
    )
}}

{%- set free_mail_domains = lead_free_mail_domains() %}

with

leads as (

    select
        scored.*,
        lower(trim(coalesce(scored.first_name, '') || ' ' || coalesce(scored.last_name, ''))) as full_name,
        staged.custom_attributes
    from {{ ref('int_leads_scored') }} as scored
    inner join {{ ref('stg_crm_export__leads') }} as staged
        on scored.tenant_id = staged.tenant_id
        and scored.lead_id = staged.lead_id
    where {{ run_tenant_filter('scored.tenant_id') }}

),

deals as (

    select
        tenant_id,
        lead_id,
        min(case when is_won then updated_at end) as won_at,
        min(case when is_closed and not is_won then updated_at end) as lost_at
    from {{ ref('stg_crm_api__deals') }}
    where {{ run_tenant_filter() }} and lead_id is not null
    group by tenant_id, lead_id

),

customers as (

    select
        tenant_id,
        customer_id,
        email,
        {{ dbt.split_part('email', "'@'", 2) }} as email_domain,
        lower(trim(customer_name)) as full_name,
        created_at
    from {{ ref('stg_stripe__customers') }}
    where {{ run_tenant_filter() }} and email is not null

),

customer_matches as (

    select leads.tenant_id, leads.lead_id, min(customers.created_at) as customer_at
    from leads
    inner join customers
        on leads.tenant_id = customers.tenant_id
        and (
            leads.email = customers.email
            or (
                leads.email_domain = customers.email_domain
                and leads.email_domain not in {{ sql_string_list(free_mail_domains) }}
                and leads.full_name <> ''
                and leads.full_name = customers.full_name
            )
        )
    group by leads.tenant_id, leads.lead_id

),

outcomes as (

    select
        leads.*,
        deals.won_at,
        deals.lost_at,
        customer_matches.customer_at,
        case
            when leads.status = 'converted' then 'status_converted'
            when deals.won_at is not null then 'won_deal'
            when customer_matches.customer_at is not null then 'stripe_customer'
            when leads.status = 'unqualified' then 'status_unqualified'
            when deals.lost_at is not null then 'lost_deal'
            when leads.days_before_tenant_newest > 90 then 'open_90_days'
        end as label_source
    from leads
    left join deals
        on leads.tenant_id = deals.tenant_id and leads.lead_id = deals.lead_id
    left join customer_matches
        on leads.tenant_id = customer_matches.tenant_id
        and leads.lead_id = customer_matches.lead_id

)

select
    -- ids
    tenant_id,
    lead_id,

    -- fit attributes (features)
    email_domain,
    case
        when email_domain is null or email_domain = '' then true
        when email_domain in {{ sql_string_list(free_mail_domains) }} then true
        else false
    end as is_free_mail,
    title,
    title_seniority,
    industry,
    company_size,
    country,
    source,
    custom_attributes,

    -- the rules score without its status factor: the baseline the model must
    -- beat (with the status it would read the label)
    score as rules_score,
    score - status_points as rules_score_without_status,

    -- outcome (label, never a feature)
    status,
    label_source,
    case
        when label_source in ('status_converted', 'won_deal', 'stripe_customer') then 1
        when label_source is not null then 0
    end as label,
    case
        when label_source is null then 'open'
        when label_source in ('status_converted', 'won_deal', 'stripe_customer') then 'converted'
        else 'lost'
    end as outcome,

    -- dates
    created_at,
    tenant_newest_created_at,
    case
        when label_source = 'won_deal' then won_at
        when label_source = 'stripe_customer' then customer_at
        when label_source = 'lost_deal' then lost_at
        when label_source = 'open_90_days' then created_at + interval '90 days'
        when label_source = 'status_converted' then coalesce(won_at, customer_at)
    end as outcome_at,
    least(
        tenant_newest_created_at,
        coalesce(
            case
                when label_source = 'won_deal' then won_at
                when label_source = 'stripe_customer' then customer_at
                when label_source = 'lost_deal' then lost_at
                when label_source = 'open_90_days' then created_at + interval '90 days'
                when label_source = 'status_converted' then coalesce(won_at, customer_at)
            end,
            tenant_newest_created_at
        )
    ) as features_as_of

from outcomes
