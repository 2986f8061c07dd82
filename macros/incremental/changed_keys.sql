{#-
    The keys a per-key incremental model (strategy cdp_replace_keys) must compute again when
    customer_events cannot name them (cdp_events_changed_since): those whose events differ from the
    ones their stored rows were computed from. `current` and `stored` are relations (or CTEs) with one
    row per key, its event count (`count_column`) and the sum of its events' event_fingerprint. A key is
    changed when it is new, gone (it only loses its stored rows) or its count or fingerprint differs.
    With every_key, every key is returned, for a build that recomputes all of them.
-#}
{% macro cdp_changed_keys(current, stored, key, count_column, every_key=false) -%}
    {%- set conditions = [
        current ~ '.' ~ key ~ ' is null',
        stored ~ '.' ~ key ~ ' is null',
        current ~ '.' ~ count_column ~ ' != ' ~ stored ~ '.' ~ count_column,
        current ~ '.event_fingerprint != ' ~ stored ~ '.event_fingerprint',
    ] -%}
    select coalesce({{ current }}.{{ key }}, {{ stored }}.{{ key }}) as {{ key }}
    from {{ current }}
    full outer join {{ stored }} on {{ current }}.{{ key }} = {{ stored }}.{{ key }}
    where {{ 'true' if every_key else conditions | join('\n        or ') }}
{%- endmacro %}
