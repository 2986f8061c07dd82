{#-
    Macros behind the incremental customer_events (the lookback window, the per-source watermarks and
    the identity snapshot that tells which stored events must be re-attributed) and the models that read
    it incrementally, customer_sessions and int_computed_traits (the event fingerprint, and the build
    numbers that tell which customers and visitors changed).
-#}

{#- A var that must be a whole number of `unit` (hours, minutes), at least `minimum` (0 or 1): its value,
    or a parse error naming the var, the bound and an example (the default). -#}
{% macro cdp_whole_number_var(name, default, unit, minimum) -%}
    {%- set value = var(name, default) -%}
    {%- if value is not number or value < minimum or value != (value | int) -%}
        {% do exceptions.raise_compiler_error(
            "var " ~ name ~ " (dbt_project.yml) must be a whole number of " ~ unit
            ~ (", 0 or more" if minimum == 0 else " above " ~ (minimum - 1)) ~ ", e.g. " ~ default
            ~ "; got: " ~ value) %}
    {%- endif -%}
    {{ return(value | int) }}
{%- endmacro %}

{#- Var cdp_events_lookback_hours, checked: a whole number of hours, 0 or more. -#}
{% macro cdp_events_lookback_hours() -%}
    {{ return(cdp_whole_number_var('cdp_events_lookback_hours', 72, 'hours', 0)) }}
{%- endmacro %}

{#- Var cdp_session_timeout_minutes, checked: a whole number of minutes above 0. -#}
{% macro cdp_session_timeout_minutes() -%}
    {{ return(cdp_whole_number_var('cdp_session_timeout_minutes', 30, 'minutes', 1)) }}
{%- endmacro %}

{#- Where customer_events keeps the identity graph its rows were attributed with (identifier_key,
    customer_id), written after every build: the next build compares it with identity_graph. -#}
{% macro cdp_customer_events_snapshot(relation) -%}
    {{ return(relation.incorporate(path={'identifier': relation.identifier ~ '__graph'})) }}
{%- endmacro %}

{#- Where customer_events keeps the keys (identifier_key) of the identifiers its events carry that could
    change their attribution on entering the graph: those stronger than the identifier that attributed
    the event (all of them for an unattributed event). Each was unknown to the graph when its row was
    written, or it would have attributed the event; a weaker one cannot change the attribution, and a
    row whose attributing identifier leaves the graph is written again (and its identifiers recorded).
    A build probes the stored events only for the new identifiers of the graph that are in this table,
    usually none: new visitors bring anonymous ids no stored event carries. -#}
{% macro cdp_customer_events_unmatched(relation) -%}
    {{ return(relation.incorporate(path={'identifier': relation.identifier ~ '__unmatched'})) }}
{%- endmacro %}

{#- SELECT of the identifier keys of cdp_customer_events_unmatched on the rows of `events` meeting
    `condition`. Identifier types strongest first, as customer_events attributes. -#}
{% macro cdp_unmatched_identifiers_sql(events, condition) -%}
    {%- set types = ['user_id', 'email', 'phone', 'anonymous_id'] -%}
    {%- set branches = [] -%}
    {%- for identifier_type in types -%}
        {%- set weaker = types[loop.index:] -%}
        {%- set stronger_than = 'attributed_by_type is null' -%}
        {%- if weaker -%}
            {%- set stronger_than = stronger_than ~ ' or attributed_by_type in (' ~ cdp_sql_strings(weaker) ~ ')' -%}
        {%- endif -%}
        {%- set branch = 'select ' ~ cdp_identifier_key("'" ~ identifier_type ~ "'", identifier_type)
            ~ ' as identifier_key from ' ~ events ~ ' where ' ~ condition ~ ' and ' ~ identifier_type
            ~ ' is not null and (' ~ stronger_than ~ ')' -%}
        {%- do branches.append(branch) -%}
    {%- endfor -%}
    select distinct identifier_key from ({{ branches | join(' union all ') }}) as carried
{%- endmacro %}

{#- Post-hook: keep cdp_customer_events_unmatched. The rows the build wrote carry the latest build number;
    a full refresh (or a missing table) records every row. -#}
{% macro cdp_keep_unmatched_identifiers(relation) -%}
    {%- set side = cdp_customer_events_unmatched(relation) -%}
    {%- if load_cached_relation(side) is none or flags.FULL_REFRESH -%}
        {{ return(cdp_replace_table(side, cdp_unmatched_identifiers_sql(relation, '1 = 1'))) }}
    {%- endif -%}
    {%- set latest = 'written_in_build = (select max(written_in_build) from ' ~ relation ~ ')' -%}
    {{ return(
        'insert into ' ~ side ~ ' select written.identifier_key from ('
        ~ cdp_unmatched_identifiers_sql(relation, latest) ~ ') as written where written.identifier_key not in '
        ~ '(select kept.identifier_key from ' ~ side ~ ' as kept)') }}
{%- endmacro %}

{#- Erasure (cdp privacy forget). customer_events keeps a forgotten person's events for counts, with the
    forgotten identifiers nulled: no row keeps a value whose hash is in stg_privacy__forgotten_identifiers.
    The side table holds the hashes the stored rows already honour, so a build rewrites stored events
    only for identifiers forgotten since the last one (usually none: nothing is read for it). -#}
{% macro cdp_customer_events_forgotten(relation) -%}
    {{ return(relation.incorporate(path={'identifier': relation.identifier ~ '__forgotten'})) }}
{%- endmacro %}

{#- How many forgotten identifier hashes the build must honour: {'all': in the erasure list, 'new': not
    yet in the side table (all of them when there is no side table or on a full build)}. -#}
{% macro cdp_customer_events_forgotten_counts(forgotten, side) -%}
    {%- if not execute -%}{{ return({'all': 0, 'new': 0}) }}{%- endif -%}
    {%- set sql = 'select count(*) as all_hashes' -%}
    {%- if side is not none -%}
        {%- set sql = sql ~ ', count(case when kept.identifier_hash is null then 1 end) as new_hashes from '
            ~ forgotten ~ ' as listed left join ' ~ side
            ~ ' as kept on listed.identifier_hash = kept.identifier_hash' -%}
    {%- else -%}
        {%- set sql = sql ~ ' from ' ~ forgotten -%}
    {%- endif -%}
    {%- set row = run_query(sql).rows[0] -%}
    {%- set counts = {'all': row[0] | int} -%}
    {%- do counts.update({'new': (row[1] or 0) | int if side is not none else counts['all']}) -%}
    {{ return(counts) }}
{%- endmacro %}

{#- Columns an incremental build of `relation` needs in the stored table; a table built before they
    existed is rebuilt with --full-refresh (the message says so). -#}
{% macro cdp_check_incremental_columns(relation, columns) -%}
    {%- if not execute -%}{{ return(none) }}{%- endif -%}
    {%- set have = cdp_column_names(relation) -%}
    {%- set missing = [] -%}
    {%- for column in columns -%}
        {%- if column not in have -%}{%- do missing.append(column) -%}{%- endif -%}
    {%- endfor -%}
    {%- if missing -%}
        {% do exceptions.raise_compiler_error(
            relation ~ " has no column(s) " ~ missing | join(', ') ~ ": it was built by an earlier version of "
            ~ "this project. Rebuild it once with `dbt build --select " ~ relation.identifier
            ~ " --full-refresh`.") %}
    {%- endif -%}
{%- endmacro %}

{#- {event_type: SQL lower bound on loaded_at} for an incremental build: the latest loaded_at of each
    event type already stored, minus the lookback. A type with no stored rows has no bound (all of
    its events load). Empty on a full build. -#}
{% macro cdp_customer_events_since(relation) -%}
    {%- set since = {} -%}
    {%- if execute -%}
        {%- set hours = cdp_events_lookback_hours() -%}
        {%- set rows = run_query(
            "select event_type, cast(max(loaded_at) as " ~ dbt.type_string() ~ ") as latest from " ~ relation
            ~ " where loaded_at is not null group by event_type") -%}
        {%- for row in rows -%}
            {%- if row[1] is not none -%}
                {%- do since.update({row[0]: dbt.dateadd(
                    'hour', -hours, "cast('" ~ row[1] ~ "' as " ~ dbt.type_timestamp() ~ ")")}) -%}
            {%- endif -%}
        {%- endfor -%}
    {%- endif -%}
    {{ return(since) }}
{%- endmacro %}

{#- The where clause that keeps one branch of customer_events to its new and late rows. `loaded_at` lists
    the columns that say when a row landed, the first one set winning. The condition on the first column
    alone follows from the one on all of them; it is added because an engine can push a comparison of a
    bare column into the scan (DuckDB then reads the other columns of the passing rows only), which it
    cannot do with a coalesce. -#}
{% macro cdp_customer_events_window(since, event_type, loaded_at) -%}
    {%- if event_type in since -%}
        {%- set landed = loaded_at[0] if loaded_at | length == 1 else 'coalesce(' ~ loaded_at | join(', ') ~ ')' -%}
        where ({{ landed }} is null or {{ landed }} >= {{ since[event_type] }})
        {%- if loaded_at | length > 1 %}
            and ({{ loaded_at[0] }} is null or {{ loaded_at[0] }} >= {{ since[event_type] }})
        {%- endif -%}
    {%- endif -%}
{%- endmacro %}

{#- SQL of the identifiers that changed customer (a merge, a split) or left the graph (an erasure, a new
    hub, a blocklist entry) since the snapshot. -#}
{% macro cdp_moved_identifiers_sql(graph, snapshot) -%}
    select previous_graph.identifier_key
    from {{ snapshot }} as previous_graph
    left join {{ graph }} as graph on previous_graph.identifier_key = graph.identifier_key
    where graph.identifier_key is null or graph.customer_id != previous_graph.customer_id
{%- endmacro %}

{#- SQL of the identifiers new to the graph since the snapshot: stored events carrying one may now
    belong to its customer. With `unmatched` (cdp_customer_events_unmatched), only those a stored event
    carries where they could change its attribution. -#}
{% macro cdp_added_identifiers_sql(graph, snapshot, unmatched=none) -%}
    select
        graph.identifier_type,
        graph.identifier_value
    from {{ graph }} as graph
    left join {{ snapshot }} as previous_graph on graph.identifier_key = previous_graph.identifier_key
    where previous_graph.identifier_key is null
    {%- if unmatched is not none %}
        and graph.identifier_key in (select carried.identifier_key from {{ unmatched }} as carried)
    {%- endif %}
{%- endmacro %}

{#- Which kinds of change there are: 'moved' and/or the types of added identifiers (a list). The model
    only looks for stored events touched by a kind that exists, so a build that changed no identity
    does not read the stored events at all. -#}
{% macro cdp_identity_changes(graph, snapshot, unmatched=none) -%}
    {%- set kinds = [] -%}
    {%- if execute -%}
        {%- set rows = run_query(
            "select 'moved' as kind, count(*) as identifiers
             from (" ~ cdp_moved_identifiers_sql(graph, snapshot) ~ ") as moved
             union all
             select identifier_type as kind, count(*) as identifiers
             from (" ~ cdp_added_identifiers_sql(graph, snapshot, unmatched) ~ ") as added
             group by identifier_type") -%}
        {%- for row in rows -%}
            {%- if row[1] | int > 0 -%}{%- do kinds.append(row[0]) -%}{%- endif -%}
        {%- endfor -%}
    {%- endif -%}
    {{ return(kinds) }}
{%- endmacro %}

{#- A number per event (its id, time and load time) that customer_events stores and the per-customer and
    per-visitor models sum: a customer or visitor whose event count or sum differs from the stored one
    has new, late, reloaded, moved or erased events. Below 2^31, so a sum over anyone stays within a
    bigint on every engine. -#}
{% macro cdp_event_fingerprint(event_id, occurred_at, loaded_at) -%}
    {{ return(cdp_fingerprint(event_id, [occurred_at, loaded_at])) }}
{%- endmacro %}

{#- A hash of a row below 2^31: `key` (a non-null string) and the `details` that say which version of it
    (any type, null allowed). Incremental models sum it per key to tell which keys' input rows changed
    (cdp_changed_keys). -#}
{% macro cdp_fingerprint(key, details) -%}
    {{ return(adapter.dispatch('cdp_fingerprint', 'cdp')(key, details)) }}
{%- endmacro %}

{#- DuckDB hashes the typed values themselves: no text is built for each row. -#}
{% macro duckdb__cdp_fingerprint(key, details) -%}
    cast(hash({{ key }}, {{ details | join(', ') }}) % 2147483647 as {{ dbt.type_bigint() }})
{%- endmacro %}

{% macro default__cdp_fingerprint(key, details) -%}
    {%- set parts = [] -%}
    {%- for detail in details -%}
        {%- do parts.append("coalesce(cast(" ~ detail ~ " as " ~ dbt.type_string() ~ "), '')") -%}
    {%- endfor -%}
    ({{ cdp_identifier_key(key, parts | join(" || '/' || ")) }} % 2147483647)
{%- endmacro %}

{#- The visitor an event belongs to for sessions: its customer, else its device. -#}
{% macro cdp_visitor_id(customer_id, anonymous_id) -%}
    coalesce({{ customer_id }}, 'anonymous:' || {{ anonymous_id }})
{%- endmacro %}

{#- The builds the rows of customer_events (`relation`) come from: {'latest': the number of the last
    build that wrote rows, 'incremental': whether it kept rows of earlier builds (a full build keeps
    none)}, or none (no table, no rows, or a table from before column written_in_build). -#}
{% macro cdp_customer_events_builds(relation) -%}
    {%- if not execute -%}{{ return(none) }}{%- endif -%}
    {%- set have = cdp_column_names(relation) -%}
    {%- if 'written_in_build' not in have -%}{{ return(none) }}{%- endif -%}
    {%- set row = run_query(
        'select min(written_in_build), max(written_in_build) from ' ~ relation).rows[0] -%}
    {%- if row[1] is none -%}{{ return(none) }}{%- endif -%}
    {{ return({'latest': row[1] | int, 'incremental': (row[0] | int) < (row[1] | int)}) }}
{%- endmacro %}

{#- The latest build of customer_events as SQL (null when there is none), for the state of a model that
    reads it incrementally: the build its stored rows were computed from. -#}
{% macro cdp_customer_events_latest_build(events) -%}
    {%- set builds = cdp_customer_events_builds(events) -%}
    {{ return('cast(' ~ (builds.latest if builds else 'null') ~ ' as ' ~ dbt.type_bigint() ~ ')') }}
{%- endmacro %}

{#- For an incremental build of `relation` (customer_sessions, int_computed_traits) on customer_events
    (`events`): the build number after which rows of customer_events name every key whose events
    changed since `relation` was last built, or none when they do not and every key's event count and
    fingerprint must be compared instead. They do when `relation` was built from the latest build of
    customer_events, or from the one before and the latest was incremental: that build wrote each event
    it added, replaced or re-attributed, with the visitor the event belonged to before
    (previous_visitor_id). A full build of customer_events, a skipped build, a missing state or var
    cdp_verify_incremental (true: compare every key, which also repairs a table edited by hand) mean
    none. -#}
{% macro cdp_events_changed_since(relation, events) -%}
    {%- if not execute or var('cdp_verify_incremental', false) -%}{{ return(none) }}{%- endif -%}
    {%- set state = cdp_read_state(relation, ['events_build']) -%}
    {%- set builds = cdp_customer_events_builds(events) -%}
    {%- if state is none or state.events_build is none or builds is none -%}{{ return(none) }}{%- endif -%}
    {%- set consumed = state.events_build | int -%}
    {%- if consumed == builds.latest or (consumed == builds.latest - 1 and builds.incremental) -%}
        {{ return(consumed) }}
    {%- endif -%}
    {{ return(none) }}
{%- endmacro %}
