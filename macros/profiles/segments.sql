{#-
    Segments declared as data (var cdp_yaml_segments), the registry of every segment (models listed in
    var cdp_segments plus declared ones), holdouts and priority lists, each validated with a message
    that names the var, the entry and the fix.
-#}

{#- The declared segments, validated: name, description, owner and a where over customer_traits. -#}
{% macro cdp_yaml_segments() -%}
    {%- set declared = var('cdp_yaml_segments', []) or [] -%}
    {%- if declared is mapping or declared is string -%}
        {% do exceptions.raise_compiler_error(
            "var cdp_yaml_segments must be a list of segments (- name: ..., where: ...), got: " ~ declared) %}
    {%- endif -%}
    {%- set keys = ['name', 'description', 'owner', 'title', 'where'] -%}
    {%- set model_segments = var('cdp_segments', []) -%}
    {%- set seen = [] -%}
    {%- for segment in declared -%}
        {%- set label = (segment.get('name') if segment is mapping else none) or '#' ~ loop.index -%}
        {%- set prefix = "var cdp_yaml_segments (dbt_project.yml), segment '" ~ label ~ "': " -%}
        {%- if segment is not mapping -%}
            {% do exceptions.raise_compiler_error(prefix ~ "each segment is a mapping with name, description, "
                ~ "owner and where; got: " ~ segment) %}
        {%- endif -%}
        {%- for key in segment -%}
            {%- if key not in keys -%}
                {% do exceptions.raise_compiler_error(prefix ~ "unknown key '" ~ key ~ "'; allowed keys: "
                    ~ keys | join(', ')) %}
            {%- endif -%}
        {%- endfor -%}
        {%- if segment.get('name') is not string or not modules.re.match('^[a-z_][a-z0-9_]*$', segment.name) -%}
            {% do exceptions.raise_compiler_error(prefix ~ "name must be lower snake_case, e.g. vip_buyers") %}
        {%- endif -%}
        {%- if segment.name in model_segments -%}
            {% do exceptions.raise_compiler_error(prefix ~ "a segment model of that name is already listed in "
                ~ "var cdp_segments; rename one of them") %}
        {%- endif -%}
        {%- if segment.name in seen -%}
            {% do exceptions.raise_compiler_error(prefix ~ "declared twice; segment names must be unique") %}
        {%- endif -%}
        {%- do seen.append(segment.name) -%}
        {%- for key in ['description', 'owner', 'where'] -%}
            {%- if segment.get(key) is not string or not segment.get(key) | trim -%}
                {% do exceptions.raise_compiler_error(prefix ~ key ~ " is required (text)"
                    ~ ("; an SQL condition over customer_traits columns, e.g. \"orders >= 3\"" if key == 'where'
                       else "; every segment says what it is and who owns it")) %}
            {%- endif -%}
        {%- endfor -%}
    {%- endfor -%}
    {{ return(declared) }}
{%- endmacro %}

{#- Every segment name: the models of var cdp_segments, then the declared ones. -#}
{% macro cdp_all_segment_names() -%}
    {{ return(var('cdp_segments', []) + (cdp_yaml_segments() | map(attribute='name') | list)) }}
{%- endmacro %}

{#- var cdp_segment_holdouts, validated: known segments, shares from 0 to 1. -#}
{% macro cdp_segment_holdouts() -%}
    {%- set holdouts = var('cdp_segment_holdouts', {}) or {} -%}
    {%- set known = cdp_all_segment_names() -%}
    {%- if holdouts is not mapping -%}
        {% do exceptions.raise_compiler_error(
            "var cdp_segment_holdouts must map segment names to shares, e.g. {high_value_customers: 0.1}; got: "
            ~ holdouts) %}
    {%- endif -%}
    {%- for segment, share in holdouts.items() -%}
        {%- if segment not in known -%}
            {% do exceptions.raise_compiler_error("var cdp_segment_holdouts: unknown segment '" ~ segment
                ~ "'; known segments: " ~ known | join(', ')) %}
        {%- endif -%}
        {%- if share is not number or share < 0 or share > 1 -%}
            {% do exceptions.raise_compiler_error("var cdp_segment_holdouts: share of '" ~ segment
                ~ "' must be a number from 0 to 1 (0.1 holds 10% out); got: " ~ share) %}
        {%- endif -%}
    {%- endfor -%}
    {{ return(holdouts) }}
{%- endmacro %}

{#- True for the deterministic holdout share of a segment: a hash of segment and customer, so the
    same customers are held out on every build, and each segment draws its own holdout. -#}
{% macro cdp_is_holdout(segment_expr, customer_expr, share) -%}
    mod(abs({{ cdp_identifier_key(segment_expr, customer_expr) }}), 10000) < {{ (share * 10000) | round | int }}
{%- endmacro %}

{#- var cdp_segment_priority_lists, validated: {list: [segment, ...]} over known segments. -#}
{% macro cdp_segment_priority_lists() -%}
    {%- set lists = var('cdp_segment_priority_lists', {}) or {} -%}
    {%- set known = cdp_all_segment_names() -%}
    {%- if lists is not mapping -%}
        {% do exceptions.raise_compiler_error(
            "var cdp_segment_priority_lists must map list names to ordered segment lists, e.g. "
            ~ "{lifecycle: [cart_abandoners_7d, lapsed_buyers]}; got: " ~ lists) %}
    {%- endif -%}
    {%- for name, segments in lists.items() -%}
        {%- set prefix = "var cdp_segment_priority_lists, list '" ~ name ~ "': " -%}
        {%- if not modules.re.match('^[a-z_][a-z0-9_]*$', name | string) -%}
            {% do exceptions.raise_compiler_error(prefix ~ "list names are lower snake_case") %}
        {%- endif -%}
        {%- if segments is string or segments is mapping or segments is not iterable or not segments -%}
            {% do exceptions.raise_compiler_error(prefix ~ "give a non-empty list of segments, highest priority "
                ~ "first; got: " ~ segments) %}
        {%- endif -%}
        {%- for segment in segments -%}
            {%- if segment not in known -%}
                {% do exceptions.raise_compiler_error(prefix ~ "unknown segment '" ~ segment
                    ~ "'; known segments: " ~ known | join(', ')) %}
            {%- endif -%}
        {%- endfor -%}
        {%- if segments | unique | list | length != segments | length -%}
            {% do exceptions.raise_compiler_error(prefix ~ "a segment is listed twice: " ~ segments | join(', ')) %}
        {%- endif -%}
    {%- endfor -%}
    {{ return(lists) }}
{%- endmacro %}
