{#-
    One row per pair of distinct identifiers seen together on at least one record, with how often and
    one example record (for `cdp identity explain`). Blocklisted identifiers take no part.
-#}

with

identifiers as (

    select * from {{ ref('int_identifiers') }}

),

nodes as (

    select * from {{ ref('int_identity_nodes') }}

),

usable as (

    select distinct
        identifiers.identifier_key,
        identifiers.source_model,
        identifiers.record_key,
        identifiers.observed_at
    from identifiers
    inner join nodes
        on
            identifiers.identifier_key = nodes.identifier_key
            and not nodes.is_blocked

),

pairs as (

    select
        least(a.identifier_key, b.identifier_key) as identifier_key_a,
        greatest(a.identifier_key, b.identifier_key) as identifier_key_b,
        a.source_model,
        a.record_key,
        a.observed_at
    from usable as a
    inner join usable as b
        on
            a.source_model = b.source_model
            and a.record_key = b.record_key
            and a.identifier_key < b.identifier_key

),

final as (

    select
        identifier_key_a,
        identifier_key_b,
        count(*) as record_count,
        min(observed_at) as first_linked_at,
        max(observed_at) as last_linked_at,
        min(source_model || ':' || record_key) as example_record
    from pairs
    group by identifier_key_a, identifier_key_b

)

select * from final
