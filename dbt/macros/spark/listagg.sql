{#
    dbt.listagg on Spark, in order. dbt-spark's own ignores `order_by_clause`
    (collect_list keeps no order across a shuffle), and the project's reasons and
    model cards are strings whose order is part of their meaning. Here each value
    is collected with its sort keys in a struct, the array sorted, the values
    joined. The clause is the one the models pass to every engine: `order by`
    and comma-separated expressions, each optionally `asc`/`desc`; a descending
    numeric key is negated (a descending text key would not be: none is used).
#}
{% macro spark__listagg(measure, delimiter_text, order_by_clause, limit_num) -%}
    {%- if not order_by_clause -%}
        {{ return(dbt_spark_unordered_listagg(measure, delimiter_text, limit_num)) }}
    {%- endif -%}
    {%- set clause = order_by_clause | trim -%}
    {%- if not clause.lower().startswith('order by ') -%}
        {{ exceptions.raise_compiler_error("listagg order_by_clause must start with 'order by': " ~ clause) }}
    {%- endif -%}
    {%- set keys = [] -%}
    {%- for part in clause[9:].split(',') -%}
        {%- set words = part | trim -%}
        {%- if words.lower().endswith(' desc') -%}
            {%- do keys.append('-(' ~ words[:-5] ~ ')') -%}
        {%- elif words.lower().endswith(' asc') -%}
            {%- do keys.append(words[:-4]) -%}
        {%- else -%}
            {%- do keys.append(words) -%}
        {%- endif -%}
    {%- endfor -%}
    {%- set fields = [] -%}
    {%- for key in keys -%}
        {%- do fields.append("'k" ~ loop.index ~ "', " ~ key) -%}
    {%- endfor -%}
    {%- set collected -%}
        transform(
            array_sort(collect_list(named_struct({{ fields | join(', ') }}, 'v', {{ measure }}))),
            x -> x.v
        )
    {%- endset -%}
    {%- if limit_num -%}
        {%- set collected = 'slice(' ~ collected ~ ', 1, ' ~ limit_num ~ ')' -%}
    {%- endif -%}
    {{ return('array_join(' ~ collected ~ ', ' ~ delimiter_text ~ ')') }}
{%- endmacro %}

{% macro dbt_spark_unordered_listagg(measure, delimiter_text, limit_num) -%}
    {%- set collected = 'collect_list(' ~ measure ~ ')' -%}
    {%- if limit_num -%}
        {%- set collected = 'slice(' ~ collected ~ ', 1, ' ~ limit_num ~ ')' -%}
    {%- endif -%}
    {{ return('array_join(' ~ collected ~ ', ' ~ delimiter_text ~ ')') }}
{%- endmacro %}
