{#-
    Computed traits: per-customer aggregates over customer_events, declared as data (var
    cdp_computed_traits) and compiled into one group-by pass (model int_computed_traits).

    A trait is a mapping:
        name          column name in customer_traits (lower snake_case, unique)
        aggregation   count, sum, avg, min, max, first, last, most_frequent, unique_list, unique_count
        column        a customer_events column or an SQL expression over it (optional for count)
        event_type    page, track, identify, order, email, consent (a string or a list)
        event_name    an event name or a list of them (e.g. order_completed, email_click)
        where         any SQL condition over customer_events columns
        window_days   only events in the N days up to as_of (var cdp_as_of, default the latest event)
        description   what the trait means, for people reading the profile
-#}

{#- Columns of customer_events a trait may name directly. -#}
{% macro cdp_customer_event_columns() -%}
    {{ return([
        'event_id', 'customer_id', 'event_type', 'event_name', 'occurred_at', 'loaded_at', 'anonymous_id',
        'user_id', 'email', 'phone', 'page_url', 'referrer', 'utm_source', 'utm_medium', 'utm_campaign',
        'user_agent', 'order_id', 'revenue', 'detail', 'attributed_by_type'
    ]) }}
{%- endmacro %}

{#- Columns customer_traits computes itself; a declared trait may not take one of these names. -#}
{% macro cdp_customer_traits_reserved_columns() -%}
    {{ return([
        'customer_id', 'user_id', 'crm_id', 'is_registered', 'identifier_count', 'first_seen_at', 'sessions',
        'average_order_value', 'has_email_bounced', 'has_unsubscribed', 'crm_lifecycle_stage', 'as_of',
        'days_since_last_order', 'days_since_last_seen', 'days_between_orders', 'recency_score',
        'frequency_score', 'monetary_score', 'rfm_segment', 'lifecycle_stage', 'churn_risk_score',
        'churn_risk_reason', 'segments', 'event_count', 'event_fingerprint'
    ] + (var('cdp_survivorship', {}) | list) + cdp_consent_columns()) }}
{%- endmacro %}

{#- One boolean column per consent purpose in customer_traits. -#}
{% macro cdp_consent_columns() -%}
    {%- set columns = [] -%}
    {%- for purpose in var('cdp_consent_purposes', []) -%}
        {%- do columns.append('consent_' ~ purpose) -%}
    {%- endfor -%}
    {{ return(columns) }}
{%- endmacro %}

{#- Order statuses that count as a paid order (cancelled and pending orders never do). -#}
{% macro cdp_paid_order_events() -%}
    {{ return(['order_completed', 'order_refunded', 'order_partially_refunded']) }}
{%- endmacro %}

{#- The traits every profile has, declared like user traits so all share the one pass. -#}
{% macro cdp_core_traits() -%}
    {%- set paid = cdp_paid_order_events() -%}
    {%- set traits = [
        {'name': 'first_event_at', 'aggregation': 'min', 'column': 'occurred_at'},
        {'name': 'last_seen_at', 'aggregation': 'max', 'column': 'occurred_at'},
        {'name': 'page_views', 'aggregation': 'count', 'event_type': 'page'},
        {'name': 'products_added', 'aggregation': 'count', 'event_type': 'track', 'event_name': 'product_added'},
        {'name': 'last_cart_activity_at', 'aggregation': 'max', 'column': 'occurred_at', 'event_type': 'track',
            'event_name': ['product_added', 'checkout_started']},
        {'name': 'orders', 'aggregation': 'count', 'event_type': 'order', 'event_name': paid},
        {'name': 'refunded_orders', 'aggregation': 'count', 'event_type': 'order',
            'event_name': ['order_refunded', 'order_partially_refunded']},
        {'name': 'lifetime_value', 'aggregation': 'sum', 'column': 'revenue', 'event_type': 'order',
            'event_name': paid},
        {'name': 'first_order_at', 'aggregation': 'min', 'column': 'occurred_at', 'event_type': 'order',
            'event_name': paid},
        {'name': 'last_order_at', 'aggregation': 'max', 'column': 'occurred_at', 'event_type': 'order',
            'event_name': paid},
        {'name': 'emails_delivered', 'aggregation': 'count', 'event_type': 'email', 'event_name': 'email_delivered'},
        {'name': 'email_opens', 'aggregation': 'count', 'event_type': 'email', 'event_name': 'email_open'},
        {'name': 'email_clicks', 'aggregation': 'count', 'event_type': 'email', 'event_name': 'email_click'},
        {'name': 'last_email_open_at', 'aggregation': 'max', 'column': 'occurred_at', 'event_type': 'email',
            'event_name': 'email_open'},
        {'name': 'email_bounces', 'aggregation': 'count', 'event_type': 'email', 'event_name': 'email_bounce'},
        {'name': 'email_unsubscribes', 'aggregation': 'count', 'event_type': 'email',
            'event_name': ['email_unsubscribe', 'email_spam_complaint']},
    ] -%}
    {#- Consent: the latest change per purpose wins (ties: the later event id). -#}
    {%- for purpose in var('cdp_consent_purposes') -%}
        {%- do traits.append({
            'name': 'consent_' ~ purpose ~ '_change', 'aggregation': 'last', 'column': 'event_name',
            'event_type': 'consent',
            'event_name': ['consent_' ~ purpose ~ '_granted', 'consent_' ~ purpose ~ '_revoked']}) -%}
    {%- endfor -%}
    {{ return(traits) }}
{%- endmacro %}

{#- A clear compile error for one trait. -#}
{% macro cdp_trait_error(index, trait, message) -%}
    {%- set label = trait.get('name') if trait is mapping and trait.get('name') else '#' ~ (index + 1) -%}
    {% do exceptions.raise_compiler_error(
        "var cdp_computed_traits (dbt_project.yml), trait '" ~ label ~ "': " ~ message) %}
{%- endmacro %}

{#- The declared traits (var cdp_computed_traits), validated: every mistake stops the build with a
    message naming the trait and the fix. -#}
{% macro cdp_user_computed_traits() -%}
    {%- set declared = var('cdp_computed_traits', []) or [] -%}
    {%- if declared is mapping or declared is string -%}
        {% do exceptions.raise_compiler_error(
            "var cdp_computed_traits must be a list of traits (- name: ..., aggregation: ...), got: " ~ declared) %}
    {%- endif -%}
    {%- set aggregations = ['count', 'sum', 'avg', 'min', 'max', 'first', 'last', 'most_frequent',
        'unique_list', 'unique_count'] -%}
    {%- set keys = ['name', 'description', 'aggregation', 'column', 'event_type', 'event_name', 'where',
        'window_days'] -%}
    {%- set event_types = ['page', 'track', 'identify', 'order', 'email', 'consent'] -%}
    {%- set reserved = cdp_customer_traits_reserved_columns() + (cdp_core_traits() | map(attribute='name') | list) -%}
    {%- set columns = cdp_customer_event_columns() -%}
    {%- set seen = [] -%}
    {%- for trait in declared -%}
        {%- set i = loop.index0 -%}
        {%- if trait is not mapping -%}
            {{ cdp_trait_error(i, trait, "each trait is a mapping with name and aggregation, got: " ~ trait) }}
        {%- endif -%}
        {%- for key in trait -%}
            {%- if key not in keys -%}
                {{ cdp_trait_error(i, trait, "unknown key '" ~ key ~ "'; allowed keys: " ~ keys | join(', ')) }}
            {%- endif -%}
        {%- endfor -%}
        {%- set name = trait.get('name') -%}
        {%- if not name or name is not string or not modules.re.match('^[a-z_][a-z0-9_]*$', name) -%}
            {{ cdp_trait_error(i, trait, "name must be a lower snake_case column name such as orders_90d, got: "
                ~ name) }}
        {%- endif -%}
        {%- if name in reserved -%}
            {{ cdp_trait_error(i, trait, "name '" ~ name ~ "' is already a customer_traits column; "
                ~ "pick another name") }}
        {%- endif -%}
        {%- if name in seen -%}
            {{ cdp_trait_error(i, trait, "name '" ~ name ~ "' is declared twice; trait names must be unique") }}
        {%- endif -%}
        {%- do seen.append(name) -%}
        {%- set aggregation = trait.get('aggregation') -%}
        {%- if aggregation not in aggregations -%}
            {{ cdp_trait_error(i, trait, "aggregation '" ~ aggregation ~ "' is not supported; use one of "
                ~ aggregations | join(', ')) }}
        {%- endif -%}
        {%- set column = trait.get('column') -%}
        {%- if column is none and aggregation != 'count' -%}
            {{ cdp_trait_error(i, trait, "aggregation " ~ aggregation ~ " needs a column (a customer_events column"
                ~ " or an SQL expression), e.g. column: revenue") }}
        {%- endif -%}
        {%- if column is not none and column is not string -%}
            {{ cdp_trait_error(i, trait, "column must be text (a column name or an SQL expression), got: " ~ column) }}
        {%- endif -%}
        {%- if column is string and modules.re.match('^[A-Za-z_][A-Za-z0-9_]*$', column)
            and column | lower not in columns -%}
            {{ cdp_trait_error(i, trait, "column '" ~ column ~ "' is not a column of customer_events; use one of "
                ~ columns | join(', ') ~ " or an SQL expression over them") }}
        {%- endif -%}
        {%- set types = trait.get('event_type') -%}
        {%- for t in ([types] if types is string else (types or [])) -%}
            {%- if t not in event_types -%}
                {{ cdp_trait_error(i, trait, "event_type '" ~ t ~ "' is not one of " ~ event_types | join(', ')) }}
            {%- endif -%}
        {%- endfor -%}
        {%- set names = trait.get('event_name') -%}
        {%- if names is not none and names is not string and (names is mapping or names is not iterable) -%}
            {{ cdp_trait_error(i, trait, "event_name must be a name or a list of names, got: " ~ names) }}
        {%- endif -%}
        {%- set where = trait.get('where') -%}
        {%- if where is not none and (where is not string or not where | trim) -%}
            {{ cdp_trait_error(i, trait, "where must be an SQL condition over customer_events, e.g. "
                ~ "\"revenue > 100\", got: " ~ where) }}
        {%- endif -%}
        {%- set window = trait.get('window_days') -%}
        {%- if window is not none and (window is not number or window is string or window <= 0
            or window != window | int) -%}
            {{ cdp_trait_error(i, trait, "window_days must be a whole number of days above 0 (e.g. 90), got: "
                ~ window) }}
        {%- endif -%}
    {%- endfor -%}
    {{ return(declared) }}
{%- endmacro %}

{#- Core and declared traits: everything int_computed_traits computes. -#}
{% macro cdp_computed_traits() -%}
    {{ return(cdp_core_traits() + cdp_user_computed_traits()) }}
{%- endmacro %}

{#- The value a trait takes for a customer with no matching event (counts and sums are 0). -#}
{% macro cdp_trait_default(trait) -%}
    {{ return('0' if trait.aggregation in ['count', 'sum', 'unique_count'] else none) }}
{%- endmacro %}

{#- A list of values as an SQL list of string literals. -#}
{% macro cdp_sql_strings(values) -%}
    {%- set items = [values] if values is string else values -%}
    {%- for v in items -%}
        '{{ v | replace("'", "''") }}'{{ ", " if not loop.last }}
    {%- endfor -%}
{%- endmacro %}

{#- The condition an event must meet to count towards a trait (none: every event of the customer). -#}
{% macro cdp_trait_condition(trait, as_of='as_of') -%}
    {%- set parts = [] -%}
    {%- if trait.get('event_type') -%}
        {%- do parts.append('event_type in (' ~ cdp_sql_strings(trait.event_type) ~ ')') -%}
    {%- endif -%}
    {%- if trait.get('event_name') -%}
        {%- do parts.append('event_name in (' ~ cdp_sql_strings(trait.event_name) ~ ')') -%}
    {%- endif -%}
    {%- if trait.get('where') -%}
        {%- do parts.append('(' ~ trait.where ~ ')') -%}
    {%- endif -%}
    {%- if trait.get('window_days') -%}
        {%- do parts.append('occurred_at > ' ~ dbt.dateadd('day', -(trait.window_days | int), as_of)
            ~ ' and occurred_at <= ' ~ as_of) -%}
    {%- endif -%}
    {{ return(parts | join(' and ') if parts else none) }}
{%- endmacro %}

{#- The aggregate expression of one trait. -#}
{% macro cdp_trait_expression(trait, as_of='as_of') -%}
    {%- set value = trait.get('column') or ('1' if trait.aggregation == 'count' else none) -%}
    {{- return(adapter.dispatch('cdp_filtered_aggregate', 'cdp')(
        trait.aggregation, value, cdp_trait_condition(trait, as_of))) -}}
{%- endmacro %}

{#- aggregation(value) over the rows meeting condition. The portable form masks values with case;
    engines with FILTER (DuckDB, Postgres) get the clause, which is faster and reads better. -#}
{% macro cdp_filtered_aggregate(aggregation, value, condition) -%}
    {{ return(adapter.dispatch('cdp_filtered_aggregate', 'cdp')(aggregation, value, condition)) }}
{%- endmacro %}

{% macro default__cdp_filtered_aggregate(aggregation, value, condition) -%}
    {%- set v = ('case when ' ~ condition ~ ' then ' ~ value ~ ' end') if condition else value -%}
    {%- set present = ((condition ~ ' and ') if condition else '') ~ value ~ ' is not null' -%}
    {%- set key = 'case when ' ~ present ~ ' then occurred_at end' -%}
    {%- if aggregation in ['count', 'sum', 'avg', 'min', 'max'] -%}
        {{ aggregation }}({{ v }})
    {%- elif aggregation == 'unique_count' -%}
        count(distinct {{ v }})
    {%- elif aggregation == 'unique_list' -%}
        {{ cdp_string_agg_distinct('cast(' ~ v ~ ' as ' ~ dbt.type_string() ~ ')') }}
    {%- elif aggregation == 'first' -%}
        (array_agg({{ v }} order by {{ key }} asc nulls last, event_id asc))[1]
    {%- elif aggregation == 'last' -%}
        (array_agg({{ v }} order by {{ key }} desc nulls last, event_id desc))[1]
    {%- elif aggregation == 'most_frequent' -%}
        mode() within group (order by {{ v }})
    {%- else -%}
        {% do exceptions.raise_compiler_error("unknown aggregation '" ~ aggregation ~ "'") %}
    {%- endif -%}
{%- endmacro %}

{% macro duckdb__cdp_filtered_aggregate(aggregation, value, condition) -%}
    {%- set only = ' filter (where ' ~ condition ~ ')' if condition else '' -%}
    {%- set present = ((condition ~ ' and ') if condition else '') ~ value ~ ' is not null' -%}
    {%- set only_non_null = ' filter (where ' ~ present ~ ')' -%}
    {%- if aggregation in ['count', 'sum', 'avg', 'min', 'max'] -%}
        {{ aggregation }}({{ value }}){{ only }}
    {%- elif aggregation == 'unique_count' -%}
        count(distinct {{ value }}){{ only }}
    {%- elif aggregation == 'unique_list' -%}
        string_agg(distinct cast({{ value }} as varchar), ',' order by cast({{ value }} as varchar)){{ only }}
    {%- elif aggregation == 'first' -%}
        arg_min({{ value }}, {'at': occurred_at, 'id': event_id}){{ only_non_null }}
    {%- elif aggregation == 'last' -%}
        arg_max({{ value }}, {'at': occurred_at, 'id': event_id}){{ only_non_null }}
    {%- elif aggregation == 'most_frequent' -%}
        {#- The most frequent value; ties go to the smallest value, so rebuilds agree. -#}
        (list_sort(list_transform(
            map_entries(histogram({{ value }}){{ only_non_null }}),
            lambda e: {'n': -cast(e.value as bigint), 'v': e.key}
        )))[1].v
    {%- else -%}
        {% do exceptions.raise_compiler_error("unknown aggregation '" ~ aggregation ~ "'") %}
    {%- endif -%}
{%- endmacro %}

{#- Spark 3.4+ has FILTER, min_by/max_by over a struct key and a deterministic mode (ties: smallest). -#}
{% macro spark__cdp_filtered_aggregate(aggregation, value, condition) -%}
    {%- set only = ' filter (where ' ~ condition ~ ')' if condition else '' -%}
    {%- set present = ((condition ~ ' and ') if condition else '') ~ value ~ ' is not null' -%}
    {%- set only_non_null = ' filter (where ' ~ present ~ ')' -%}
    {%- if aggregation in ['count', 'sum', 'avg', 'min', 'max'] -%}
        {{ aggregation }}({{ value }}){{ only }}
    {%- elif aggregation == 'unique_count' -%}
        count(distinct {{ value }}){{ only }}
    {%- elif aggregation == 'unique_list' -%}
        case when count({{ value }}){{ only }} > 0 then
            array_join(array_sort(collect_set(cast({{ value }} as string)){{ only }}), ',') end
    {%- elif aggregation == 'first' -%}
        min_by({{ value }}, struct(occurred_at, event_id)){{ only_non_null }}
    {%- elif aggregation == 'last' -%}
        max_by({{ value }}, struct(occurred_at, event_id)){{ only_non_null }}
    {%- elif aggregation == 'most_frequent' -%}
        mode({{ value }}, true){{ only_non_null }}
    {%- else -%}
        {% do exceptions.raise_compiler_error("unknown aggregation '" ~ aggregation ~ "'") %}
    {%- endif -%}
{%- endmacro %}

{#- A digest of every trait's name and compiled expression: a change in any definition (or in how an
    aggregation compiles) means the stored traits were computed differently. -#}
{% macro cdp_computed_traits_signature() -%}
    {%- set parts = [] -%}
    {%- for trait in cdp_computed_traits() -%}
        {%- do parts.append(trait.name ~ '=' ~ cdp_trait_expression(trait)) -%}
    {%- endfor -%}
    {{ return(local_md5(parts | join('\n'))) }}
{%- endmacro %}

{#- Post-hook SQL of int_computed_traits: the state its next build compares with. -#}
{% macro cdp_computed_traits_save_state(relation) -%}
    {{ return(cdp_save_state(relation, {
        'as_of': cdp_as_of(), 'traits_signature': "'" ~ cdp_computed_traits_signature() ~ "'",
        'events_build': cdp_customer_events_latest_build(ref('customer_events'))})) }}
{%- endmacro %}

{#- The distinct time windows (days) of the traits, smallest first. -#}
{% macro cdp_trait_windows(traits) -%}
    {%- set windows = [] -%}
    {%- for trait in traits if trait.get('window_days') and (trait.window_days | int) not in windows -%}
        {%- do windows.append(trait.window_days | int) -%}
    {%- endfor -%}
    {{ return(windows | sort) }}
{%- endmacro %}

{#- For an incremental build of int_computed_traits: {'as_of': the last build's as_of as SQL,
    'as_of_moved': whether this build's as_of differs, 'recompute_all': whether every customer must be
    computed again}. All are when the state is missing, the trait definitions changed, the stored
    table predates the incremental columns, or as_of moved and a trait's column or condition reads
    as_of itself (only windows are followed customer by customer). -#}
{% macro cdp_computed_traits_previous_build(relation) -%}
    {%- set previous = {'as_of': 'null', 'recompute_all': true, 'as_of_moved': true} -%}
    {%- if not execute -%}{{ return(previous) }}{%- endif -%}
    {%- set have = cdp_column_names(relation) -%}
    {%- set state = cdp_read_state(relation, ['as_of', 'traits_signature']) -%}
    {%- if state is none or state.as_of is none or 'event_count' not in have or 'event_fingerprint' not in have -%}
        {{ return(previous) }}
    {%- endif -%}
    {%- set as_of_now = run_query("select cast(" ~ cdp_as_of() ~ " as " ~ dbt.type_string() ~ ")").rows[0][0] -%}
    {%- do previous.update({'as_of': "cast('" ~ state.as_of ~ "' as " ~ dbt.type_timestamp() ~ ")"}) -%}
    {%- set reads_as_of = [] -%}
    {%- for trait in cdp_computed_traits() -%}
        {%- if modules.re.search('\\bas_of\\b', (trait.get('where') or '') ~ ' ' ~ (trait.get('column') or '')) -%}
            {%- do reads_as_of.append(trait.name) -%}
        {%- endif -%}
    {%- endfor -%}
    {%- do previous.update({'as_of_moved': state.as_of != as_of_now}) -%}
    {%- do previous.update({'recompute_all': state.traits_signature != cdp_computed_traits_signature()
        or (reads_as_of | length > 0 and previous.as_of_moved)}) -%}
    {{ return(previous) }}
{%- endmacro %}
