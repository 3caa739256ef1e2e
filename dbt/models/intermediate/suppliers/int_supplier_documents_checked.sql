-- Each supplier against each document its tenant's policy requires: the newest
-- document of that kind (by received_at), its expiry, and whether its legal
-- name and number agree with the supplier record. One row per (tenant_id,
-- supplier_id, doc_type); `status` is missing, expired, expiring (within the
-- policy's widest warning window) or valid. `as_of` is the policy's day, else
-- today in UTC.
with

suppliers as (

    select * from {{ ref('stg_suppliers__suppliers') }}

),

policy as (

    select
        tenant_id,
        coalesce(as_of, {{ utc_date('current_timestamp') }}) as as_of,
        expiry_warning_days
    from {{ ref('stg_suppliers__policy') }}

),

required as (

    select * from {{ ref('stg_suppliers__required_documents') }}

),

documents as (

    select
        *,
        row_number() over (
            partition by tenant_id, supplier_id, doc_type
            order by received_at desc nulls last, document_id desc
        ) as recency_rank
    from {{ ref('stg_supplier_docs__documents') }}

),

fields as (

    select
        *,
        row_number() over (
            partition by tenant_id, document_id, field
            order by confidence desc nulls last, page asc, location asc
        ) as field_rank
    from {{ ref('stg_supplier_docs__document_fields') }}

),

newest as (

    select
        suppliers.tenant_id,
        suppliers.supplier_id,
        suppliers.legal_name as supplier_legal_name,
        suppliers.aliases as supplier_aliases,
        suppliers.attributes as supplier_attributes,
        required.doc_type,
        required.check_name,
        required.check_number,
        policy.as_of,
        policy.expiry_warning_days,
        documents.document_id,
        documents.file_name
    from suppliers
    inner join required
        on suppliers.tenant_id = required.tenant_id
    inner join policy
        on suppliers.tenant_id = policy.tenant_id
    left join documents
        on suppliers.tenant_id = documents.tenant_id
        and suppliers.supplier_id = documents.supplier_id
        and required.doc_type = documents.doc_type
        and documents.recency_rank = 1

),

with_fields as (

    select
        newest.*,
        expiry.value as expiry_text,
        expiry.page as expiry_page,
        doc_name.value as document_legal_name,
        doc_name.page as name_page,
        doc_number.value as document_number,
        doc_number.page as number_page,
        {{ supplier_record_number('newest.supplier_attributes', 'newest.doc_type') }}
            as record_number
    from newest
    left join fields as expiry
        on newest.tenant_id = expiry.tenant_id
        and newest.document_id = expiry.document_id
        and expiry.field = 'expiry_date'
        and expiry.field_rank = 1
    left join fields as doc_name
        on newest.tenant_id = doc_name.tenant_id
        and newest.document_id = doc_name.document_id
        and doc_name.field = 'legal_name'
        and doc_name.field_rank = 1
    left join fields as doc_number
        on newest.tenant_id = doc_number.tenant_id
        and newest.document_id = doc_number.document_id
        and doc_number.field = 'document_number'
        and doc_number.field_rank = 1

),

checked as (

    select
        *,
        case
            when {{ matches_regex('expiry_text', '^[0-9]{4}-[0-9]{2}-[0-9]{2}$') }}
                then cast(expiry_text as date)
        end as expiry_date,
        -- names compared as letters and digits only, case-folded
        {{ supplier_name_key('document_legal_name') }} as document_name_key,
        {{ supplier_name_key('supplier_legal_name') }} as supplier_name_key,
        ';' || coalesce({{ regexp_replace_all('lower(supplier_aliases)', "'[^a-z0-9;]+'", "''") }}, '')
            || ';' as alias_keys
    from with_fields

)

select
    tenant_id,
    supplier_id,
    doc_type,
    document_id,
    file_name,
    as_of,
    expiry_date,
    expiry_page,
    case when expiry_date is not null then {{ date_diff_days('expiry_date', 'as_of') }} end as days_to_expiry,
    case
        when document_id is null then 'missing'
        when expiry_date is null then 'valid'
        when expiry_date < as_of then 'expired'
        when {{ date_diff_days('expiry_date', 'as_of') }} <= {{ supplier_widest_window('expiry_warning_days') }}
            then 'expiring'
        else 'valid'
    end as status,
    case
        when expiry_date is null or expiry_date < as_of then null
        when {{ date_diff_days('expiry_date', 'as_of') }} <= {{ supplier_warning_window('expiry_warning_days', 1) }}
            then {{ supplier_warning_window('expiry_warning_days', 1) }}
        when {{ date_diff_days('expiry_date', 'as_of') }} <= {{ supplier_warning_window('expiry_warning_days', 2) }}
            then {{ supplier_warning_window('expiry_warning_days', 2) }}
        when {{ date_diff_days('expiry_date', 'as_of') }} <= {{ supplier_warning_window('expiry_warning_days', 3) }}
            then {{ supplier_warning_window('expiry_warning_days', 3) }}
    end as expiring_within_days,
    document_legal_name,
    name_page,
    check_name
        and document_name_key is not null
        and document_name_key <> supplier_name_key
        and position(';' || document_name_key || ';' in alias_keys) = 0 as name_mismatch,
    document_number,
    number_page,
    record_number,
    check_number
        and document_number is not null
        and record_number is not null
        and upper(replace(document_number, ' ', '')) <> upper(replace(record_number, ' ', ''))
        as number_mismatch
from checked
