-- Rules-based lead score, v0: points per factor, their sum clamped to 0..100,
-- and a grade. Which rule a lead matches is decided here; the points of each
-- rule come from the seed lead_score_points and the grade from the seed
-- lead_grade_bands, which Python reads too (core/scoring.py). Deterministic by design: recency is measured against the
-- tenant's newest lead, never against now(), so a rebuild (on either target)
-- gives the same scores.

{%- set target_industries = ['software', 'saas', 'ecommerce', 'e-commerce', 'fintech', 'healthcare'] %}
{%- set adjacent_industries = [
    'retail', 'manufacturing', 'technology', 'information technology', 'internet',
    'it services', 'financial services', 'insurance', 'logistics', 'media', 'marketing'
] %}
{%- set free_mail_domains = lead_free_mail_domains() %}
{#- Word boundaries spelled out, since \b is not portable (see matches_regex). #}
{%- set c_level = 'chief|founder|owner|managing director|(^|[^a-z])(ceo|cfo|cto|coo|cmo|cio|ciso|cro|cpo|cdo|chro)([^a-z]|$)' %}
{%- set vp_level = 'vice president|director|(^|[^a-z])(vp|svp|evp|avp|head)([^a-z]|$)' %}
{%- set president = '(^|[^a-z])president([^a-z]|$)' %}
{%- set owner_as_role = '(product|process|project|account) owner' %}
{%- set manager = 'manager|(^|[^a-z])mgr([^a-z]|$)' %}
{%- set factors = [
    'title_seniority', 'company_size', 'industry_fit', 'lead_source',
    'business_email', 'status', 'recency'
] %}


with

score_points as (

    select factor, rule, points from {{ ref('lead_score_points') }}

),

leads as (

    select
        *,
        lower(title) as title_lower,
        {{ dbt.split_part('email', "'@'", 2) }} as email_domain,
        max(created_at) over (partition by tenant_id) as tenant_newest_created_at
    from {{ ref('stg_crm_export__leads') }}

),

-- Which rule of each factor a lead matches; the rule names are the `rule`
-- column of the seed lead_score_points.
rules as (

    select
        *,

        case
            when title is null then 'missing'
            -- "Product Owner" is a role, not an owner of the business
            when {{ matches_regex('title_lower', owner_as_role) }} then 'manager'
            when {{ matches_regex('title_lower', c_level) }} then 'c_level'
            -- before "president", so a vice president is not read as one
            when {{ matches_regex('title_lower', vp_level) }} then 'vp'
            when {{ matches_regex('title_lower', president) }} then 'c_level'
            when {{ matches_regex('title_lower', manager) }} then 'manager'
            else 'other'
        end as title_seniority_rule,

        -- staging maps every band it knows onto the seed's rules, the rest to null
        coalesce(company_size, 'missing') as company_size_rule,

        case
            when industry in {{ sql_string_list(target_industries) }} then 'target'
            when industry in {{ sql_string_list(adjacent_industries) }} then 'adjacent'
            when industry is not null then 'other'
            else 'missing'
        end as industry_fit_rule,

        case
            when source in ('referral', 'partner') or source like '%demo%' then 'warm'
            when source in ('event', 'webinar', 'conference', 'trade_show') then 'event'
            when source in ('website', 'organic_search') then 'inbound'
            when source = 'paid_search' then 'paid_search'
            when source = 'social' then 'social'
            when source is not null then 'other'
            else 'missing'
        end as lead_source_rule,

        case
            when email_domain is null or email_domain = '' then 'free_mail'
            when email_domain in {{ sql_string_list(free_mail_domains) }} then 'free_mail'
            else 'business'
        end as business_email_rule,

        case
            when status in ('qualified', 'converted', 'contacted', 'new') then status
            else 'unqualified'
        end as status_rule,

        {{ days_between('created_at', 'tenant_newest_created_at') }} as days_before_tenant_newest

    from leads

),

scored as (

    select
        *,
        case
            when days_before_tenant_newest <= 30 then 'recent'
            else 'older'
        end as recency_rule
    from rules

),

-- Each rule's points from the seed. A rule missing from the seed gives null
-- points and a null score, which the not_null test on score reports.
pointed as (

    select
        scored.*
        {%- for factor in factors %},
        cast({{ factor }}.points as integer) as {{ factor }}_points
        {%- endfor %}
    from scored
    {%- for factor in factors %}
    left join score_points as {{ factor }}
        on {{ factor }}.factor = '{{ factor }}'
        and {{ factor }}.rule = scored.{{ factor }}_rule
    {%- endfor %}

),

totalled as (

    select
        *,
        cast(
            least(100, greatest(0,
                title_seniority_points
                + company_size_points
                + industry_fit_points
                + lead_source_points
                + business_email_points
                + status_points
                + recency_points
            )) as integer
        ) as score
    from pointed

),

-- The grade is the band with the highest min_score the score reaches (seed
-- lead_grade_bands; its lowest band starts at 0, so every score has one).
graded as (

    select
        totalled.*,
        bands.grade,
        row_number() over (
            partition by totalled.tenant_id, totalled.lead_id
            order by bands.min_score desc
        ) as band_rank
    from totalled
    inner join {{ ref('lead_grade_bands') }} as bands
        on totalled.score >= bands.min_score

)

select
    -- ids
    tenant_id,
    lead_id,

    -- lead
    email,
    email_domain,
    first_name,
    last_name,
    company,
    title,
    industry,
    company_size,
    country,
    source,
    status,
    created_at,
    tenant_newest_created_at,
    days_before_tenant_newest,
    title_seniority_rule as title_seniority,

    -- points per factor
    {%- for factor in factors %}
    {{ factor }}_points,
    {%- endfor %}

    -- score
    score,
    cast(grade as {{ dbt.type_string() }}) as grade

from graded
where band_rank = 1
