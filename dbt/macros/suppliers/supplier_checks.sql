{#
    Helpers of the supplier risk models (models/*/suppliers/).
#}

{#- A company name as compared between a document and the supplier record:
    lower case, letters and digits only, common legal forms dropped, so
    "ACME Trading Ltd." and "Acme Trading Limited" agree. Plain replace()
    calls, the same on every engine (their regex word boundaries differ). -#}
{% macro supplier_name_key(expr) -%}
    {%- set forms = ['limited', 'ltd', 'llc', 'incorporated', 'inc', 'gmbh', 'corporation',
                     'corp', 'company', 'co', 'plc', 'sa', 'ag', 'bv', 'oy', 'ooo'] -%}
    {%- set ns = namespace(sql="' ' || " ~ regexp_replace_all('lower(' ~ expr ~ ')', "'[^a-z0-9]+'", "' '") ~ " || ' '") -%}
    {%- for form in forms -%}
        {%- set ns.sql = "replace(" ~ ns.sql ~ ", ' " ~ form ~ " ', ' ')" -%}
    {%- endfor -%}
    nullif(replace({{ ns.sql }}, ' ', ''), '')
{%- endmacro %}

{#- The n-th (1-based, ascending) expiry warning window of the policy's
    `;`-separated list, or null when it has fewer. -#}
{% macro supplier_warning_window(column, n) -%}
    cast(nullif(split_part({{ column }}, ';', {{ n }}), '') as integer)
{%- endmacro %}

{#- The widest warning window (the list holds at most three). -#}
{% macro supplier_widest_window(column) -%}
    coalesce(
        {{ supplier_warning_window(column, 3) }},
        {{ supplier_warning_window(column, 2) }},
        {{ supplier_warning_window(column, 1) }}
    )
{%- endmacro %}

{#- Document kinds (core/contracts/suppliers.py DOC_TYPES): a supplier record's
    number for a kind is its extra column `<doc_type>_number`. -#}
{% macro supplier_doc_types() -%}
    {{ return(['certificate_of_insurance', 'quality_certificate', 'business_licence',
               'tax_form', 'bank_letter', 'other']) }}
{%- endmacro %}

{% macro supplier_record_number(attributes, doc_type) -%}
    case {{ doc_type }}
    {%- for kind in supplier_doc_types() %}
        when '{{ kind }}' then {{ json_text(attributes, [kind ~ '_number']) }}
    {%- endfor %}
    end
{%- endmacro %}
