{#-
    The keys a per-key incremental model (strategy cdp_replace_keys) must compute again: those whose
    input rows differ from the ones their stored rows were computed from (for the readers of
    customer_events, when it cannot name them itself: cdp_events_changed_since). `current` and `stored`
    are relations (or CTEs) with one row per key, its count of input rows (`count_column`) and the sum of
    their fingerprints (`fingerprint_column`, cdp_fingerprint). A key is changed when it is new, gone (it
    only loses its stored rows) or its count or fingerprint differs. With every_key, every key is
    returned, for a build that recomputes all of them.
-#}
{% macro cdp_changed_keys(
    current, stored, key, count_column, every_key=false, fingerprint_column='event_fingerprint'
) -%}
    {%- set conditions = [
        current ~ '.' ~ key ~ ' is null',
        stored ~ '.' ~ key ~ ' is null',
        current ~ '.' ~ count_column ~ ' != ' ~ stored ~ '.' ~ count_column,
        current ~ '.' ~ fingerprint_column ~ ' != ' ~ stored ~ '.' ~ fingerprint_column,
    ] -%}
    select coalesce({{ current }}.{{ key }}, {{ stored }}.{{ key }}) as {{ key }}
    from {{ current }}
    full outer join {{ stored }} on {{ current }}.{{ key }} = {{ stored }}.{{ key }}
    where {{ 'true' if every_key else conditions | join('\n        or ') }}
{%- endmacro %}
