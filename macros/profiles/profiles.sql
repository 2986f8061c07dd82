{#- Macros behind customer_traits: the as-of moment and golden-record survivorship. -#}

{#- The moment traits are computed as of: var cdp_as_of, else the latest event in customer_events. -#}
{% macro cdp_as_of() -%}
    {%- set fixed = var('cdp_as_of', none) -%}
    {%- set latest = "(select max(occurred_at) from " ~ ref('customer_events') ~ ")" -%}
    {{ return(("cast('" ~ fixed ~ "' as " ~ dbt.type_timestamp() ~ ")") if fixed else latest) }}
{%- endmacro %}

{#- The surviving value of one attribute, an aggregate over int_profile_attributes rows grouped by
    customer (var cdp_survivorship): source_priority takes the value from the most trusted source (var
    cdp_source_priority), most_frequent the value observed most often (column value_count), and every
    rule then prefers the latest observation, then the smallest value. -#}
{% macro cdp_survivor(attribute, rule) -%}
    {%- set keys = [] -%}
    {%- if rule == 'source_priority' -%}
        {%- set cases = [] -%}
        {%- for source_model in var('cdp_source_priority') -%}
            {%- do cases.append("when '" ~ source_model ~ "' then " ~ loop.index) -%}
        {%- endfor -%}
        {%- do keys.append("case source_model " ~ cases | join(' ') ~ " else 999 end") -%}
    {%- endif -%}
    {%- if rule == 'most_frequent' -%}
        {%- do keys.append('-value_count') -%}
    {%- endif -%}
    {%- do keys.append('-' ~ cdp_epoch_microseconds('observed_at')) -%}
    {{ return(cdp_first_by('attribute_value', keys, "attribute = '" ~ attribute ~ "'")) }}
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
                ~ known | join(', ') ~ " (or add a source column for it in macros/profiles/profile_attributes.sql)") %}
        {%- endif -%}
        {%- if rule not in rules -%}
            {% do exceptions.raise_compiler_error(
                "var cdp_survivorship: unknown rule '" ~ rule ~ "' for " ~ attribute ~ "; use one of "
                ~ rules | join(', ')) %}
        {%- endif -%}
    {%- endfor -%}
{%- endmacro %}

{#- The rules int_golden_records applies: var cdp_survivorship, and the CRM lifecycle stage by most
    recent observation (column crm_lifecycle_stage). -#}
{% macro cdp_survivorship_rules() -%}
    {%- set rules = {} -%}
    {%- do rules.update(var('cdp_survivorship')) -%}
    {%- do rules.update({'lifecycle_stage': 'most_recent'}) -%}
    {{ return(rules) }}
{%- endmacro %}

{#- A digest of every attribute's compiled survivor (rules and source priority): when it changes, the
    stored golden records were chosen differently. -#}
{% macro cdp_survivorship_signature() -%}
    {%- set parts = [] -%}
    {%- for attribute, rule in cdp_survivorship_rules().items() -%}
        {%- do parts.append(attribute ~ '=' ~ cdp_survivor(attribute, rule)) -%}
    {%- endfor -%}
    {{ return(local_md5(parts | join('\n'))) }}
{%- endmacro %}

{#- Post-hook SQL of int_golden_records: the state its next build compares with. -#}
{% macro cdp_golden_records_save_state(relation) -%}
    {{ return(cdp_save_state(relation, {'survivorship_signature': "'" ~ cdp_survivorship_signature() ~ "'"})) }}
{%- endmacro %}

{#- Whether an incremental build of int_golden_records (`relation`) must choose every customer again:
    no state, or other survivorship rules. -#}
{% macro cdp_golden_records_recompute_all(relation) -%}
    {%- if not execute -%}{{ return(true) }}{%- endif -%}
    {%- set state = cdp_read_state(relation, ['survivorship_signature']) -%}
    {{ return(state is none or state.survivorship_signature != cdp_survivorship_signature()) }}
{%- endmacro %}
