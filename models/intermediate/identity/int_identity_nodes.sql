{#-
    One row per distinct identifier, with when and where it was seen and whether the blocklist
    excludes it from stitching.
-#}

with

identifiers as (

    select * from {{ ref('int_identifiers') }}

),

blocklist as (

    select * from {{ ref('identity_blocklist') }}

),

extra_patterns as (

    {%- set regexes = var('cdp_identity_blocklist_regexes', []) %}
    {%- if regexes %}
        {%- for pattern in regexes %}
            select
                '*' as identifier_type,
                '{{ pattern | replace("'", "''") }}' as pattern,
                'regex' as match_type,
                'var cdp_identity_blocklist_regexes' as reason
            {%- if not loop.last %}
                union all
            {%- endif %}
        {%- endfor %}
    {%- else %}
        select
            cast(null as {{ dbt.type_string() }}) as identifier_type,
            cast(null as {{ dbt.type_string() }}) as pattern,
            cast(null as {{ dbt.type_string() }}) as match_type,
            cast(null as {{ dbt.type_string() }}) as reason
        where 1 = 0
    {%- endif %}

),

patterns as (

    select
        identifier_type,
        pattern,
        match_type,
        reason
    from blocklist
    union all
    select
        identifier_type,
        pattern,
        match_type,
        reason
    from extra_patterns

),

nodes as (

    select
        identifier_key,
        identifier_type,
        identifier_value,
        min(observed_at) as first_seen_at,
        max(observed_at) as last_seen_at,
        count(*) as observation_count,
        {{ cdp_string_agg_distinct('source_model') }} as sources
    from identifiers
    group by identifier_key, identifier_type, identifier_value

),

blocked as (

    select
        nodes.identifier_key,
        min(patterns.reason || ' (' || patterns.match_type || ': ' || patterns.pattern || ')') as block_reason
    from nodes
    inner join patterns
        on
            (patterns.identifier_type = '*' or nodes.identifier_type = patterns.identifier_type)
            and (
                (patterns.match_type = 'exact' and lower(nodes.identifier_value) = lower(patterns.pattern))
                or (
                    patterns.match_type = 'regex'
                    and {{ cdp_regex_matches('lower(nodes.identifier_value)', 'patterns.pattern') }}
                )
            )
    group by nodes.identifier_key

),

final as (

    select
        nodes.identifier_key,
        nodes.identifier_type,
        nodes.identifier_value,
        {{ cdp_identifier_rank('nodes.identifier_type') }} as identifier_rank,
        nodes.first_seen_at,
        nodes.last_seen_at,
        nodes.observation_count,
        nodes.sources,
        blocked.block_reason,
        blocked.identifier_key is not null as is_blocked
    from nodes
    left join blocked on nodes.identifier_key = blocked.identifier_key

)

select * from final
