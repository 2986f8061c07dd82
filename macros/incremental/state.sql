{#-
    State an incremental model keeps about its last build, beside it in `<model>__state` (one row,
    written by the model's post-hook): what its stored rows were computed with (an as_of, a digest of
    definitions, a setting). The next build reads it and recomputes everything when it differs.
-#}
{% macro cdp_state_relation(relation) -%}
    {{ return(relation.incorporate(path={'identifier': relation.identifier ~ '__state'})) }}
{%- endmacro %}

{#- The lower-case column names of a relation (empty when it does not exist): what a stored table or state
    row holds, for the checks of incremental builds. -#}
{% macro cdp_column_names(relation) -%}
    {{ return(adapter.get_columns_in_relation(relation) | map(attribute='name') | map('lower') | list) }}
{%- endmacro %}

{#- Post-hook SQL: replace the state with one row, {column: SQL expression}. -#}
{% macro cdp_save_state(relation, values) -%}
    {%- set columns = [] -%}
    {%- for column, expression in values.items() -%}
        {%- do columns.append(expression ~ ' as ' ~ column) -%}
    {%- endfor -%}
    {{ return(cdp_replace_table(cdp_state_relation(relation), 'select ' ~ columns | join(', '))) }}
{%- endmacro %}

{#- The state row of the last build as {column: value as text}, or none when there is none. -#}
{% macro cdp_read_state(relation, columns) -%}
    {%- if not execute -%}{{ return(none) }}{%- endif -%}
    {%- set name = cdp_state_relation(relation) -%}
    {%- set state = load_cached_relation(name) -%}
    {%- if state is none -%}{{ return(none) }}{%- endif -%}
    {%- set have = cdp_column_names(state) -%}
    {%- set selected = [] -%}
    {%- for column in columns -%}
        {%- if column not in have -%}{{ return(none) }}{%- endif -%}
        {%- do selected.append('cast(' ~ column ~ ' as ' ~ dbt.type_string() ~ ')') -%}
    {%- endfor -%}
    {%- set rows = run_query('select ' ~ selected | join(', ') ~ ' from ' ~ state).rows -%}
    {%- if rows | length != 1 -%}{{ return(none) }}{%- endif -%}
    {%- set values = {} -%}
    {%- for column in columns -%}{%- do values.update({column: rows[0][loop.index0]}) -%}{%- endfor -%}
    {{ return(values) }}
{%- endmacro %}
