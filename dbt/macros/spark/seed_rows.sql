{#
    Seed rows on Spark as SQL literals written here. dbt-spark's session method
    pastes each value between quotes unescaped, so a value with an apostrophe
    (lead_score_points has "tenant's") breaks the insert. Spark reads a doubled
    quote as two literals run together and a backslash as an escape, so both are
    spliced in as chr(39) and chr(92) instead.
#}
{% macro spark_literal(value) -%}
    {%- if value is none -%}
        null
    {%- elif value is sameas true or value is sameas false -%}
        {{ 'true' if value else 'false' }}
    {%- elif value is number -%}
        {{ value }}
    {%- else -%}
        {%- set text = value | string -%}
        {%- if "'" in text or "\\" in text -%}
            {%- set parts = [] -%}
            {%- for piece in text.split("\\") -%}
                {%- do parts.append("'" ~ (piece.split("'") | join("', chr(39), '")) ~ "'") -%}
            {%- endfor -%}
            concat({{ parts | join(', chr(92), ') }})
        {%- else -%}
            '{{ text }}'
        {%- endif -%}
    {%- endif -%}
{%- endmacro %}

{% macro spark__load_csv_rows(model, agate_table) %}
    {% set batch_size = get_batch_size() %}
    {% set column_override = model['config'].get('column_types', {}) %}
    {% set statements = [] %}
    {% for chunk in agate_table.rows | batch(batch_size) %}
        {% set sql %}
            insert into {{ this.render() }} values
            {% for row in chunk -%}
                ({%- for col_name in agate_table.column_names -%}
                    {%- set inferred_type = adapter.convert_type(agate_table, loop.index0) -%}
                    {%- set type = column_override.get(col_name, inferred_type) -%}
                    cast({{ spark_literal(row[loop.index0]) }} as {{ type }})
                    {%- if not loop.last %},{% endif -%}
                {%- endfor -%})
                {%- if not loop.last %},{% endif %}
            {%- endfor %}
        {% endset %}
        {% do adapter.add_query(sql, abridge_sql_log=True) %}
        {% if loop.index0 == 0 %}
            {% do statements.append(sql) %}
        {% endif %}
    {% endfor %}
    {{ return(statements[0]) }}
{% endmacro %}
