{#
    A CRM's head-count band mapped onto the platform's bands:
    1-10, 11-50, 51-200, 201-1000, 1001-5000, 5000+.
    Exports differ in spacing, dashes and finer bands (`201-500`, `10000+`);
    anything not recognised becomes null (and scores no size points) rather
    than a band of its own. Plain SQL, the same on every adapter.
#}
{% macro normalize_company_size(column) -%}
    {%- set cleaned -%}
        replace(replace(replace(lower(trim({{ column }})), ' ', ''), '–', '-'), ',', '')
    {%- endset -%}
    case {{ cleaned }}
        when '1-10' then '1-10'
        when '0-10' then '1-10'
        when '2-10' then '1-10'
        when '11-50' then '11-50'
        when '51-200' then '51-200'
        when '201-1000' then '201-1000'
        when '201-500' then '201-1000'
        when '501-1000' then '201-1000'
        when '1001-5000' then '1001-5000'
        when '1001-2000' then '1001-5000'
        when '2001-5000' then '1001-5000'
        when '5000+' then '5000+'
        when '5001+' then '5000+'
        when '5001-10000' then '5000+'
        when '10000+' then '5000+'
        when '10001+' then '5000+'
    end
{%- endmacro %}
