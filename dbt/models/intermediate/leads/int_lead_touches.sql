-- Every engagement touch tied to a lead, counted per lead, type and UTC day:
-- the identity rule (docs/scoring.md) applied to CRM activities, form
-- submissions and GA4 page views. One row per (tenant_id, lead_id,
-- touch_type, touch_date). Decay and the per-day caps are applied by the
-- lead model (scoring/features.py) from the tenant's configuration; this model
-- only says what happened, when, and which record proves it.
--
-- Identity, in order:
--   1. a record that names the lead (CRM activity lead_id, GA4 userId = lead id);
--   2. the same normalised email (form submissions);
--   3. else the same email domain (not free mail) and the same full name.

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
        tenant_id,
        lead_id,
        email,
        {{ dbt.split_part('email', "'@'", 2) }} as email_domain,
        lower(trim(coalesce(first_name, '') || ' ' || coalesce(last_name, ''))) as full_name
    from {{ ref('stg_crm_export__leads') }}
    where {{ run_tenant_filter() }}

),

activities as (

    select
        tenant_id,
        lead_id,
        activity_type as touch_type,
        {{ utc_date('coalesce(occurred_at, created_at)') }} as touch_date,
        1 as touches,
        'crm_api.activities:' || activity_id as evidence_ref,
        'crm_lead_id' as match_rule
    from {{ ref('stg_crm_api__activities') }}
    where {{ run_tenant_filter() }}
        and lead_id is not null
        and activity_type in ('email_open', 'email_click', 'call', 'meeting', 'form_fill')

),

submissions as (

    select
        tenant_id,
        submission_id,
        email,
        {{ dbt.split_part('email', "'@'", 2) }} as email_domain,
        lower(trim(submitter_name)) as full_name,
        submitted_at
    from {{ ref('stg_cms_forms__submissions') }}
    where {{ run_tenant_filter() }}

),

forms_by_email as (

    select
        submissions.tenant_id,
        leads.lead_id,
        submissions.submission_id,
        submissions.submitted_at,
        'email' as match_rule
    from submissions
    inner join leads
        on submissions.tenant_id = leads.tenant_id
        and submissions.email = leads.email
    where submissions.email is not null and submissions.email <> ''

),

forms_by_domain_and_name as (

    select
        submissions.tenant_id,
        leads.lead_id,
        submissions.submission_id,
        submissions.submitted_at,
        'domain_and_name' as match_rule
    from submissions
    inner join leads
        on submissions.tenant_id = leads.tenant_id
        and submissions.email_domain = leads.email_domain
        and submissions.full_name = leads.full_name
    where submissions.email_domain not in {{ sql_string_list(free_mail_domains) }}
        and submissions.full_name <> ''
        -- a submission already tied by email is not tied again
        and not exists (
            select 1 from forms_by_email as matched
            where matched.tenant_id = submissions.tenant_id
                and matched.submission_id = submissions.submission_id
        )

),

forms as (

    select
        tenant_id,
        lead_id,
        'form_fill' as touch_type,
        {{ utc_date('submitted_at') }} as touch_date,
        1 as touches,
        'cms_forms.submissions:' || submission_id as evidence_ref,
        match_rule
    from forms_by_email
    union all
    select
        tenant_id,
        lead_id,
        'form_fill' as touch_type,
        {{ utc_date('submitted_at') }} as touch_date,
        1 as touches,
        'cms_forms.submissions:' || submission_id as evidence_ref,
        match_rule
    from forms_by_domain_and_name

),

ga4 as (

    select
        tenant_id,
        user_id as lead_id,
        page_path,
        report_date as touch_date,
        cast(coalesce(screen_page_views, 0) as integer) as views,
        'ga4.report_rows:' || report_row_id as evidence_ref
    from {{ ref('stg_ga4__report_rows') }}
    where {{ run_tenant_filter() }}
        and user_id is not null

),

web as (

    select
        tenant_id, lead_id, 'page_view' as touch_type, touch_date,
        views as touches, evidence_ref, 'ga4_user_id' as match_rule
    from ga4
    union all
    select
        tenant_id, lead_id, 'pricing_visit' as touch_type, touch_date,
        views as touches, evidence_ref, 'ga4_user_id' as match_rule
    from ga4
    where page_path like '/pricing%' or page_path like '/demo%'

),

touches as (

    select * from activities
    union all
    select * from forms
    union all
    select * from web

),

-- only leads of the export: a GA4 userId or activity of an unknown lead is dropped
known as (

    select touches.*
    from touches
    inner join leads
        on touches.tenant_id = leads.tenant_id
        and touches.lead_id = leads.lead_id
    where touches.touches > 0

)

select
    tenant_id,
    lead_id,
    touch_type,
    touch_date,
    cast(sum(touches) as integer) as touches,
    -- the first record of the day, as the reference a reason points at
    min(evidence_ref) as evidence_ref,
    min(match_rule) as match_rule
from known
group by tenant_id, lead_id, touch_type, touch_date
