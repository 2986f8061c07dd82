{#- One row per identifier observation: an identifier value seen on one record of one source. -#}
{%- set sources = cdp_identity_sources() %}

with

{% for source in sources %}
{{ source.model }} as (

    select * from {{ ref(source.model) }}

),

{% endfor %}
forgotten as (

    select * from {{ ref('stg_privacy__forgotten_identifiers') }}

),

observations as (

    {%- for source in sources %}
    {%- set outer_loop = loop %}
    {%- for identifier_type, column in source.identifiers.items() %}
    select
        '{{ source.model }}' as source_model,
        cast({{ source.record_key }} as {{ dbt.type_string() }}) as record_key,
        '{{ identifier_type }}' as identifier_type,
        trim(cast({{ column }} as {{ dbt.type_string() }})) as identifier_value,
        cast({{ source.observed_at }} as {{ dbt.type_timestamp() }}) as observed_at
    from {{ source.model }}
    where {{ column }} is not null
    {%- if not (outer_loop.last and loop.last) %}
    union all
    {%- endif %}
    {%- endfor %}
    {%- endfor %}

),

final as (

    select
        {{ cdp_identifier_key('identifier_type', 'identifier_value') }} as identifier_key,
        source_model,
        record_key,
        identifier_type,
        identifier_value,
        observed_at
    from observations
    where identifier_value <> ''
        {#- people who asked to be forgotten (cdp privacy forget) leave the graph here #}
        and {{ cdp_forgotten_hash('identifier_type', 'identifier_value') }} not in (
            select identifier_hash from forgotten
        )

)

select * from final
