{#
    A Jinja list of strings as a SQL list for `in`: ['a', "b'c"] -> ('a', 'b''c').
    Keeps rule tables as readable lists at the top of a model.
#}
{% macro sql_string_list(values) -%}
    (
    {%- for value in values -%}
        '{{ value | replace("'", "''") }}'{{ ", " if not loop.last }}
    {%- endfor -%}
    )
{%- endmacro %}
