with

source as (

    select * from {{ source('cdp_privacy', 'forgotten_identifiers') }}

),

deduplicated as (

    select
        identifier_hash,
        min(identifier_type) as identifier_type,
        min(forgotten_at) as first_forgotten_at
    from source
    where identifier_hash is not null
    group by identifier_hash

),

final as (

    select
        cast(identifier_hash as {{ dbt.type_string() }}) as identifier_hash,
        cast(identifier_type as {{ dbt.type_string() }}) as identifier_type,
        cast(first_forgotten_at as {{ dbt.type_timestamp() }}) as first_forgotten_at
    from deduplicated

)

select * from final
