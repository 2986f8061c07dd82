{#-
    An identifier as the erasure list (cdp_privacy.forgotten_identifiers, written by `cdp privacy
    forget`) stores it: md5 of `type:value`, as dbt's hash macro computes it on every engine.
    `type_expr` and `value_expr` are SQL expressions (a column, or a quoted literal type).
-#}
{% macro cdp_forgotten_hash(type_expr, value_expr) -%}
    {{ dbt.hash(type_expr ~ " || ':' || " ~ value_expr) }}
{%- endmacro %}
