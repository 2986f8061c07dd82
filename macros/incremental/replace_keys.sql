{#-
    Incremental strategy 'cdp_replace_keys': delete+insert in which the batch can also empty a key.
    Every key the batch names loses all its stored rows; the batch's rows are then inserted, except
    those whose column `cdp_tombstone_column` (model config) is null. Such a row only names a key that
    keeps no rows: customer_sessions sends one for a visitor whose events all moved to another customer
    (a merge), so that the visitor's old sessions go.

    Spark's version is in macros/engines/spark_delete_insert.sql.
-#}
{% macro cdp_replace_keys_config(unique_key) -%}
    {%- set tombstone = config.get('cdp_tombstone_column') -%}
    {%- if unique_key is not string or not tombstone -%}
        {% do exceptions.raise_compiler_error(
            "incremental_strategy 'cdp_replace_keys' (model " ~ this ~ ") needs a single-column unique_key "
            ~ "and the config cdp_tombstone_column (a column that is null only on rows that empty their key); "
            ~ "got unique_key=" ~ unique_key ~ ", cdp_tombstone_column=" ~ tombstone) %}
    {%- endif -%}
    {{ return(tombstone) }}
{%- endmacro %}

{% macro get_incremental_cdp_replace_keys_sql(arg_dict) -%}
    {%- set target = arg_dict['target_relation'] -%}
    {%- set source = arg_dict['temp_relation'] -%}
    {%- set key = arg_dict['unique_key'] -%}
    {%- set tombstone = cdp_replace_keys_config(key) -%}
    {%- set columns = get_quoted_csv(arg_dict['dest_columns'] | map(attribute='name')) -%}
    delete from {{ target }}
    where {{ key }} in (select batch.{{ key }} from {{ source }} as batch);

    insert into {{ target }} ({{ columns }})
    select {{ columns }} from {{ source }}
    where {{ tombstone }} is not null
{%- endmacro %}
