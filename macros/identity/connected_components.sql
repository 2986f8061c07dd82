{#-
    Connected components of an undirected edge list, by randomised contraction (Bögeholz, Brand and
    Todor, "In-database connected component analysis", ICDE 2020): each round, every node picks as its
    representative the neighbour (or itself) that comes first in a fresh random order; edges are
    rewritten onto representatives and self-loops dropped. The edge set shrinks geometrically, so the
    number of rounds grows with log |V|, not with the length of chains. The per-round maps are then
    composed back from the last round to the first.

    edges_sql: a query with bigint columns `node_a`, `node_b`.
    prefix:    name prefix for scratch tables (schema-qualified).
    Returns a dict: `table` (node, rep for every node in an edge; the caller drops it) and `rounds`.
-#}
{% macro cdp_connected_components(edges_sql, prefix, max_rounds=60) %}
    {% set ns = namespace(rounds=0, edges=prefix ~ '__cc_e0') %}
    {#- No distinct here: a repeated edge costs a row in the first round, the contraction dedupes it. -#}
    {{ cdp_scratch_table(ns.edges,
        "select least(node_a, node_b) as node_a, greatest(node_a, node_b) as node_b
         from (" ~ edges_sql ~ ") as e where node_a <> node_b and node_a is not null and node_b is not null") }}
    {% for round in range(max_rounds) %}
        {% set remaining = run_query('select count(*) from ' ~ ns.edges).columns[0].values()[0] %}
        {% if remaining == 0 %}{% break %}{% endif %}
        {% set seed = 7919 * (round + 1) %}
        {% set reps = prefix ~ '__cc_r' ~ round %}
        {#- The best neighbour by the round's random order, then the node itself if it comes first. -#}
        {{ cdp_scratch_table(reps,
            "select node,
                    case when " ~ cdp_seeded_hash('node', seed) ~ " < " ~ cdp_seeded_hash('best', seed) ~ "
                         then node else best end as rep
             from (
                 select node, " ~ cdp_arg_min('candidate', cdp_seeded_hash('candidate', seed)) ~ " as best
                 from (
                     select node_a as node, node_b as candidate from " ~ ns.edges ~ "
                     union all select node_b, node_a from " ~ ns.edges ~ "
                 ) as nb
                 group by node
             ) as neighbourhood") }}
        {% set next_edges = prefix ~ '__cc_e' ~ (round + 1) %}
        {{ cdp_scratch_table(next_edges,
            "select distinct least(ra.rep, rb.rep) as node_a, greatest(ra.rep, rb.rep) as node_b
             from " ~ ns.edges ~ " as e
             inner join " ~ reps ~ " as ra on ra.node = e.node_a
             inner join " ~ reps ~ " as rb on rb.node = e.node_b
             where ra.rep <> rb.rep") }}
        {% do run_query('drop table if exists ' ~ ns.edges) %}
        {% set ns.edges = next_edges %}
        {% set ns.rounds = round + 1 %}
    {% endfor %}
    {% set leftover = run_query('select count(*) from ' ~ ns.edges).columns[0].values()[0] %}
    {% do run_query('drop table if exists ' ~ ns.edges) %}
    {% if leftover > 0 %}
        {% do exceptions.raise_compiler_error(
            'connected components did not converge in ' ~ max_rounds ~ ' rounds (' ~ leftover
            ~ ' edges left); raise var cdp_identity_max_rounds') %}
    {% endif %}
    {#- Compose: walk back from the last round; a node's final rep is its rep's final rep. -#}
    {% set out = namespace(table=none) %}
    {% if ns.rounds == 0 %}
        {% set out.table = prefix ~ '__cc_empty' %}
        {{ cdp_scratch_table(out.table, "select cast(null as bigint) as node, cast(null as bigint) as rep where 1 = 0") }}
    {% else %}
        {% set out.table = prefix ~ '__cc_r' ~ (ns.rounds - 1) %}
        {% for round in range(ns.rounds - 2, -1, -1) %}
            {% set composed = prefix ~ '__cc_f' ~ round %}
            {{ cdp_scratch_table(composed,
                "select r.node, coalesce(f.rep, r.rep) as rep
                 from " ~ prefix ~ "__cc_r" ~ round ~ " as r left join " ~ out.table ~ " as f on f.node = r.rep") }}
            {% do run_query('drop table if exists ' ~ out.table) %}
            {% do run_query('drop table if exists ' ~ prefix ~ '__cc_r' ~ round) %}
            {% set out.table = composed %}
        {% endfor %}
    {% endif %}
    {#- `table` has columns node, rep; the caller drops it when done. -#}
    {{ return({'table': out.table, 'rounds': ns.rounds}) }}
{% endmacro %}
