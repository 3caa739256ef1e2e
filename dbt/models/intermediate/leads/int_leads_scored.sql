-- Rules-based lead score, v0: points per factor, their sum clamped to 0..100,
-- and a grade. The factor table is documented in _int_crm__models.yml; keep
-- the two in step. Deterministic by design: recency is measured against the
-- tenant's newest lead, never against now(), so a rebuild (on either target)
-- gives the same scores.

{%- set target_industries = ['software', 'saas', 'ecommerce', 'e-commerce', 'fintech', 'healthcare'] %}
{%- set adjacent_industries = [
    'retail', 'manufacturing', 'technology', 'information technology', 'internet',
    'it services', 'financial services', 'insurance', 'logistics', 'media', 'marketing'
] %}
{%- set free_mail_domains = [
    'gmail.com', 'googlemail.com', 'yahoo.com', 'yahoo.co.uk', 'yahoo.fr', 'yahoo.de',
    'ymail.com', 'rocketmail.com', 'hotmail.com', 'hotmail.co.uk', 'hotmail.fr', 'hotmail.de',
    'outlook.com', 'live.com', 'msn.com', 'aol.com', 'icloud.com', 'me.com', 'mac.com',
    'proton.me', 'protonmail.com', 'gmx.com', 'gmx.de', 'gmx.net', 'web.de', 'mail.com',
    'mail.ru', 'yandex.com', 'yandex.ru', 'fastmail.com', 'tutanota.com',
    'qq.com', '163.com', '126.com'
] %}
{#- Word boundaries spelled out, since \b is not portable (see matches_regex). #}
{%- set c_level = 'chief|founder|owner|managing director|(^|[^a-z])(ceo|cfo|cto|coo|cmo|cio|ciso|cro|cpo|cdo|chro)([^a-z]|$)' %}
{%- set vp_level = 'vice president|director|(^|[^a-z])(vp|svp|evp|avp|head)([^a-z]|$)' %}
{%- set president = '(^|[^a-z])president([^a-z]|$)' %}
{%- set owner_as_role = '(product|process|project|account) owner' %}
{%- set manager = 'manager|(^|[^a-z])mgr([^a-z]|$)' %}


with

leads as (

    select
        *,
        lower(title) as title_lower,
        {{ dbt.split_part('email', "'@'", 2) }} as email_domain,
        max(created_at) over (partition by tenant_id) as tenant_newest_created_at
    from {{ ref('stg_crm_export__leads') }}

),

factors as (

    select
        *,

        case
            when title is null then 0
            -- "Product Owner" is a role, not an owner of the business
            when {{ matches_regex('title_lower', owner_as_role) }} then 12
            when {{ matches_regex('title_lower', c_level) }} then 25
            -- before "president", so a vice president is not read as one
            when {{ matches_regex('title_lower', vp_level) }} then 20
            when {{ matches_regex('title_lower', president) }} then 25
            when {{ matches_regex('title_lower', manager) }} then 12
            else 5
        end as title_seniority_points,

        case company_size
            when '1-10' then 2
            when '11-50' then 5
            when '51-200' then 10
            when '201-1000' then 15
            when '1001-5000' then 18
            when '5000+' then 20
            else 0
        end as company_size_points,

        case
            when industry in {{ sql_string_list(target_industries) }} then 15
            when industry in {{ sql_string_list(adjacent_industries) }} then 8
            when industry is not null then 3
            else 0
        end as industry_fit_points,

        case
            when source in ('referral', 'partner') or source like '%demo%' then 15
            when source in ('event', 'webinar', 'conference', 'trade_show') then 12
            when source in ('website', 'organic_search') then 8
            when source = 'paid_search' then 6
            when source = 'social' then 4
            when source is not null then 2
            else 0
        end as lead_source_points,

        case
            when email_domain is null or email_domain = '' then 0
            when email_domain in {{ sql_string_list(free_mail_domains) }} then 0
            else 10
        end as business_email_points,

        case status
            when 'qualified' then 10
            when 'converted' then 10
            when 'contacted' then 5
            when 'new' then 3
            else 0
        end as status_points,

        {{ days_between('created_at', 'tenant_newest_created_at') }} as days_before_tenant_newest

    from leads

),

scored as (

    select
        *,
        case when days_before_tenant_newest <= 30 then 5 else 0 end as recency_points
    from factors

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
    from scored

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

    -- points per factor
    cast(title_seniority_points as integer) as title_seniority_points,
    cast(company_size_points as integer) as company_size_points,
    cast(industry_fit_points as integer) as industry_fit_points,
    cast(lead_source_points as integer) as lead_source_points,
    cast(business_email_points as integer) as business_email_points,
    cast(status_points as integer) as status_points,
    cast(recency_points as integer) as recency_points,

    -- score
    score,
    case
        when score >= 75 then 'A'
        when score >= 50 then 'B'
        when score >= 25 then 'C'
        else 'D'
    end as grade

from totalled
