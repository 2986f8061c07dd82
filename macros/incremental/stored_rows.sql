{#-
    SELECT of `columns` of the rows of `relation` whose `key` is among the `key` values of `keys` (a
    relation or CTE): the stored copies of a batch's rows, for an incremental model that must know what
    it wrote before. The batch is small and the table large; each engine reads as little of it as it can.
-#}
{% macro cdp_stored_rows(relation, key, keys, columns) -%}
    {{ return(adapter.dispatch('cdp_stored_rows', 'cdp')(relation, key, keys, columns)) }}
{%- endmacro %}

{% macro default__cdp_stored_rows(relation, key, keys, columns) -%}
    select stored_rows.{{ columns | join(', stored_rows.') }}
    from {{ relation }} as stored_rows
    where stored_rows.{{ key }} in (select batch_keys.{{ key }} from {{ keys }} as batch_keys)
{%- endmacro %}

{#- DuckDB finds the rows' positions reading the key column alone, then reads the other columns of
    those rows only: the positions of the matches prune the second scan to the row groups and vectors
    that hold them (it is a third of the time of one join on the key at 24M rows). -#}
{% macro duckdb__cdp_stored_rows(relation, key, keys, columns) -%}
    select stored_rows.{{ columns | join(', stored_rows.') }}
    from {{ relation }} as stored_rows
    where stored_rows.rowid in (
        select matching.rowid
        from {{ relation }} as matching
        where matching.{{ key }} in (select batch_keys.{{ key }} from {{ keys }} as batch_keys)
    )
{%- endmacro %}
