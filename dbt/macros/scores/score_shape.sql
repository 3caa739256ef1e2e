{#
    One shape for every score (core/contracts/score_shape.py names the columns):
    a score 0-100 or null with status `unknown`, its band, its components, its
    reasons (code, label, signed points, evidence), the model and
    configuration versions, and when it was scored. Lead scores and supplier
    risk use these; sourcing opportunities are to use them too.
#}

{#- The band of a score against per-row thresholds (A best); null for no score. -#}
{% macro score_band(score, band_a, band_b, band_c) -%}
    case
        when {{ score }} is null then null
        when {{ score }} >= {{ band_a }} then 'A'
        when {{ score }} >= {{ band_b }} then 'B'
        when {{ score }} >= {{ band_c }} then 'C'
        else 'D'
    end
{%- endmacro %}

{#- `code:+points` of one reason, the element of the `reasons` text. -#}
{% macro score_reason_text(code, points) -%}
    {{ code }} || ':' || case when {{ points }} >= 0 then '+' else '' end
        || cast({{ points }} as {{ dbt.type_string() }})
{%- endmacro %}

{#- A JSON string literal of a text expression, the same bytes on every engine
    (built by hand: the engines' JSON functions space their output differently). -#}
{% macro score_json_string(expr) -%}
    {{ return(adapter.dispatch('score_json_string', 'bizos')(expr)) }}
{%- endmacro %}

{% macro default__score_json_string(expr) -%}
    case when {{ expr }} is null then 'null' else
        '"' || replace(replace(replace(replace({{ expr }}, '\', '\\'), '"', '\"'), chr(10), '\n'), chr(13), '\r') || '"'
    end
{%- endmacro %}

{#- Spark reads a backslash in a literal as an escape (and would need '\\' where the
    others read '\'), so the backslash and the quote are written as chr(92), chr(34). -#}
{% macro spark__score_json_string(expr) -%}
    case when {{ expr }} is null then 'null' else
        chr(34) || replace(replace(replace(replace({{ expr }},
            chr(92), concat(chr(92), chr(92))),
            chr(34), concat(chr(92), chr(34))),
            chr(10), concat(chr(92), 'n')),
            chr(13), concat(chr(92), 'r')) || chr(34)
    end
{%- endmacro %}

{#- One reason as a JSON object: {"code", "label", "points", "evidence"}. -#}
{% macro score_reason_json(code, label, points, evidence) -%}
    '{"code":' || {{ score_json_string(code) }}
        || ',"label":' || {{ score_json_string(label) }}
        || ',"points":' || cast({{ points }} as {{ dbt.type_string() }})
        || ',"evidence":' || {{ score_json_string(evidence) }} || '}'
{%- endmacro %}

{#
    Reasons of many rows folded per key: `reasons` (text, `code:+n|code:-m`)
    and `reasons_json` (a JSON array), ordered by `order_by`. `relation` holds
    key columns, code, label, points, evidence_ref and a `reason_order`.
#}
{% macro score_reasons(relation, keys) -%}
    select
        {{ keys | join(', ') }},
        {{ dbt.listagg(
            measure=score_reason_text('code', 'points'),
            delimiter_text="'|'",
            order_by_clause="order by reason_order"
        ) }} as reasons,
        '[' || {{ dbt.listagg(
            measure=score_reason_json('code', 'label', 'points', 'evidence_ref'),
            delimiter_text="','",
            order_by_clause="order by reason_order"
        ) }} || ']' as reasons_json
    from {{ relation }}
    group by {{ keys | join(', ') }}
{%- endmacro %}

{#- A JSON number of a numeric expression, the same bytes on every engine: six
    decimals through numeric(38, 6) (the engines print doubles differently);
    `null` for null. -#}
{% macro score_json_number(expr) -%}
    case when {{ expr }} is null then 'null' else
        cast(cast({{ expr }} as numeric(38, 6)) as {{ dbt.type_string() }})
    end
{%- endmacro %}
