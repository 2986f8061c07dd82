{#- A table, not a view: identity stitching, profile attributes and customer_events read it more than
    once per build, so duplicates are removed once per build instead of on every read. -#}
{{ config(materialized='table', enabled=var('cdp_using_crm', true)) }}

with

source as (

    select * from {{ source('crm', 'contacts') }}

),

ranked as (

    select
        *,
        row_number() over (
            partition by {{ cdp_clean_identifier('contact_id') }}
            order by updated_at desc nulls last
        ) as version_rank
    from source

),

latest_versions as (

    select * from ranked
    where version_rank = 1

),

renamed as (

    select
        {{ cdp_clean_identifier('contact_id') }} as contact_id,
        {{ cdp_clean_identifier('user_id') }} as user_id,
        {{ cdp_normalize_email('email') }} as email,
        {{ cdp_normalize_phone('phone', 'country') }} as phone,
        {{ cdp_clean_identifier('first_name') }} as first_name,
        {{ cdp_clean_identifier('last_name') }} as last_name,
        {{ cdp_clean_identifier('company') }} as company,
        {{ cdp_clean_identifier('job_title') }} as job_title,
        {{ cdp_regexp_replace('lower(' ~ cdp_clean_identifier('lifecycle_stage') ~ ')', '[^a-z]+', '_') }}
            as lifecycle_stage_cleaned,
        {{ cdp_clean_identifier('address_line1') }} as address_line1,
        {{ cdp_clean_identifier('city') }} as city,
        {{ cdp_clean_identifier('postal_code') }} as postal_code,
        upper({{ cdp_clean_identifier('country') }}) as country,
        cast(created_at as {{ dbt.type_timestamp() }}) as created_at,
        cast(updated_at as {{ dbt.type_timestamp() }}) as updated_at,
        coalesce(cast(is_deleted as {{ dbt.type_boolean() }}), false) as is_deleted
    from latest_versions

),

lifecycle_stages as (

    select
        *,
        case lifecycle_stage_cleaned
            when 'marketingqualifiedlead' then 'marketing_qualified_lead'
            when 'mql' then 'marketing_qualified_lead'
            when 'salesqualifiedlead' then 'sales_qualified_lead'
            when 'sql' then 'sales_qualified_lead'
            else lifecycle_stage_cleaned
        end as lifecycle_stage
    from renamed

),

final as (

    select
        contact_id,
        user_id,
        email,
        phone,
        first_name,
        last_name,
        company,
        job_title,
        lifecycle_stage,
        case lifecycle_stage
            when 'subscriber' then 1
            when 'lead' then 2
            when 'marketing_qualified_lead' then 3
            when 'sales_qualified_lead' then 4
            when 'opportunity' then 5
            when 'customer' then 6
            when 'evangelist' then 7
        end as lifecycle_stage_rank,
        address_line1,
        city,
        postal_code,
        country,
        created_at,
        updated_at,
        is_deleted
    from lifecycle_stages
    where contact_id is not null

)

select * from final
