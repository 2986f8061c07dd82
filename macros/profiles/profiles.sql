{#- Macros behind customer_traits: the as-of moment and golden-record survivorship. -#}

{#- The moment traits are computed as of: var cdp_as_of, else the latest event in customer_events. -#}
{% macro cdp_as_of() -%}
    {%- set fixed = var('cdp_as_of', none) -%}
    {%- set latest = "(select max(occurred_at) from " ~ ref('customer_events') ~ ")" -%}
    {{ return(("cast('" ~ fixed ~ "' as " ~ dbt.type_timestamp() ~ ")") if fixed else latest) }}
{%- endmacro %}

{#- Window ordering that puts each attribute's surviving value first, whatever its rule
    (var cdp_survivorship): source_priority ranks by var cdp_source_priority, most_frequent by how often
    the value was observed, and every rule then prefers the latest observation. CRM lifecycle_stage is
    most_recent. -#}
{% macro cdp_survivorship_ranking() -%}
    {%- set survivorship = var('cdp_survivorship') -%}
    {%- set by_priority = [] -%}
    {%- set by_frequency = [] -%}
    {%- for attribute, rule in survivorship.items() -%}
        {%- if rule == 'source_priority' -%}{%- do by_priority.append(attribute) -%}{%- endif -%}
        {%- if rule == 'most_frequent' -%}{%- do by_frequency.append(attribute) -%}{%- endif -%}
    {%- endfor -%}
    {%- set cases = [] -%}
    {%- for source_model in var('cdp_source_priority') -%}
        {%- do cases.append("when '" ~ source_model ~ "' then " ~ loop.index) -%}
    {%- endfor -%}
    {%- set keys = [] -%}
    {%- if by_priority -%}
        {%- do keys.append("case when attribute in (" ~ cdp_sql_strings(by_priority) ~ ") then case source_model "
            ~ cases | join(' ') ~ " else 999 end else 0 end") -%}
    {%- endif -%}
    {%- if by_frequency -%}
        {%- do keys.append("case when attribute in (" ~ cdp_sql_strings(by_frequency)
            ~ ") then value_count else 0 end desc") -%}
    {%- endif -%}
    {{ return((keys + ['observed_at desc', 'attribute_value']) | join(', ')) }}
{%- endmacro %}

{#- Attributes int_profile_attributes observes, so survivorship may pick one value of each. -#}
{% macro cdp_profile_attributes() -%}
    {%- set attributes = ['email', 'phone', 'first_name', 'last_name', 'company', 'city', 'country'] -%}
    {{ return(attributes) }}
{%- endmacro %}

{#- Stops the build on a survivorship rule for an attribute no source holds, or an unknown rule. -#}
{% macro cdp_check_survivorship() -%}
    {%- set known = cdp_profile_attributes() -%}
    {%- set rules = ['source_priority', 'most_recent', 'most_frequent'] -%}
    {%- set survivorship = var('cdp_survivorship') -%}
    {%- if survivorship is not mapping or not survivorship -%}
        {% do exceptions.raise_compiler_error(
            "var cdp_survivorship must map attributes to rules, e.g. email: most_recent; got: " ~ survivorship) %}
    {%- endif -%}
    {%- for attribute, rule in survivorship.items() -%}
        {%- if attribute not in known -%}
            {% do exceptions.raise_compiler_error(
                "var cdp_survivorship: no source holds attribute '" ~ attribute ~ "'; use one of "
                ~ known | join(', ') ~ " (or add it to models/intermediate/profiles/int_profile_attributes.sql)") %}
        {%- endif -%}
        {%- if rule not in rules -%}
            {% do exceptions.raise_compiler_error(
                "var cdp_survivorship: unknown rule '" ~ rule ~ "' for " ~ attribute ~ "; use one of "
                ~ rules | join(', ')) %}
        {%- endif -%}
    {%- endfor -%}
{%- endmacro %}
