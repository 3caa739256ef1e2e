{#
    Fails for every combination of `columns` that occurs more than once, e.g.
    (tenant_id, lead_id): a lead id is unique only within its tenant.
#}
{% test unique_combination(model, columns) %}

select
    {{ columns | join(', ') }},
    count(*) as occurrences
from {{ model }}
group by {{ columns | join(', ') }}
having count(*) > 1

{% endtest %}
