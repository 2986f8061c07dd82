{#-
    Connected components of an undirected edge list, by randomised contraction (Bögeholz, Brand and
    Todor, "In-database connected component analysis", ICDE 2020): each round, every node picks as its
    representative the neighbour (or itself) that comes first in a fresh random order; edges are
    rewritten onto representatives and self-loops dropped. The edge set shrinks geometrically, so the
    number of rounds grows with log |V|, not with the length of chains. The per-round maps are then
    composed back from the last round to the first.

    What keeps it cheap (docs/identity.md, "Speed"):
    - Each edge is first oriented from the endpoint later in the round's order to the one earlier. A
      node's representative is then the earliest of its earlier neighbours, so one GROUP BY over the
      edges as they are (not over both directions: half the rows) finds it, and a node without earlier
      neighbours (it comes first in its neighbourhood) keeps itself and gets no row.
    - The round maps and the composed map hold only nodes that move; nodes absent map to themselves.
      The full (node, rep) table is written once, at the end: moved nodes plus one row per
      representative.
    - The first round reads the caller's edges directly, and its map takes one pointer jump (a node's
      rep's rep), which removes a third of the edges left for round two.
    - The first two rounds keep duplicate contracted edges (few, and cheaper to carry than to
      remove); later rounds remove them.

    edges_sql: a query with bigint columns `node_a`, `node_b` (read twice in the first round: pass a
               table or a cheap query).
    prefix:    name prefix for scratch tables (schema-qualified).
    output:    the table to write the result into (replaced); default `<prefix>__cc_out`.
    node_column, rep_column: its column names (default node, rep).
    Returns a dict: `table` (one row per node of an edge, with the representative its component
    shares; the caller drops it) and `rounds`.
-#}
{% macro cdp_connected_components(edges_sql, prefix, max_rounds=60, output=none,
                                  node_column='node', rep_column='rep') %}
    {% if max_rounds < 1 %}
        {% do exceptions.raise_compiler_error('connected components: max_rounds must be at least 1') %}
    {% endif %}
    {% set ns = namespace(rounds=0, edges=none, remaining=0) %}
    {% set maps = [] %}
    {%- set source = "(select node_a, node_b from (" ~ edges_sql ~ ") as src
        where node_a <> node_b and node_a is not null and node_b is not null)" %}
    {% for round in range(max_rounds) %}
        {% if round > 0 %}
            {% set ns.remaining = run_query('select count(*) from ' ~ ns.edges).columns[0].values()[0] %}
            {% if ns.remaining == 0 %}{% break %}{% endif %}
        {% endif %}
        {% set oriented = cdp_cc_oriented(source if round == 0 else ns.edges, 7919 * (round + 1)) %}
        {% set reps = prefix ~ '__cc_m' ~ round %}
        {{ cdp_scratch_table(reps,
            "select hi as node, " ~ cdp_arg_min_by_hash('lo', 'lo_hash') ~ " as rep
             from " ~ oriented ~ " as o
             group by hi") }}
        {% if round == 0 %}
            {#- One pointer jump in the first round: a node whose rep moved too takes its rep's rep. The
                second round starts with ~35% fewer edges, which more than pays for the join. -#}
            {% set jumped = prefix ~ '__cc_j0' %}
            {{ cdp_scratch_table(jumped,
                "select m.node, coalesce(r.rep, m.rep) as rep
                 from " ~ reps ~ " as m
                 left join " ~ reps ~ " as r on r.node = m.rep") }}
            {% do run_query('drop table if exists ' ~ reps) %}
            {% set reps = jumped %}
        {% endif %}
        {% do maps.append(reps) %}
        {#- Every `hi` has a row in the map; a `lo` without one comes first in its neighbourhood. -#}
        {% set contracted =
            "select coalesce(ml.rep, o.lo) as rep_lo, mh.rep as rep_hi
             from " ~ oriented ~ " as o
             inner join " ~ reps ~ " as mh on mh.node = o.hi
             left join " ~ reps ~ " as ml on ml.node = o.lo" %}
        {% set next_edges = prefix ~ '__cc_e' ~ (round + 1) %}
        {% if round < 2 %}
            {#- Duplicate edges are rare in the first two rounds: cheaper to carry than to remove. -#}
            {{ cdp_scratch_table(next_edges,
                "select rep_lo as node_a, rep_hi as node_b from (" ~ contracted ~ ") as c
                 where rep_lo <> rep_hi") }}
        {% else %}
            {{ cdp_scratch_table(next_edges,
                "select distinct least(rep_lo, rep_hi) as node_a, greatest(rep_lo, rep_hi) as node_b
                 from (" ~ contracted ~ ") as c
                 where rep_lo <> rep_hi") }}
        {% endif %}
        {% if round > 0 %}{% do run_query('drop table if exists ' ~ ns.edges) %}{% endif %}
        {% set ns.edges = next_edges %}
        {% set ns.rounds = round + 1 %}
    {% endfor %}
    {% if ns.rounds == max_rounds %}
        {% set ns.remaining = run_query('select count(*) from ' ~ ns.edges).columns[0].values()[0] %}
    {% endif %}
    {% do run_query('drop table if exists ' ~ ns.edges) %}
    {% if ns.remaining > 0 %}
        {% for round_map in maps %}
            {% do run_query('drop table if exists ' ~ round_map) %}
        {% endfor %}
        {% do exceptions.raise_compiler_error(
            'connected components did not converge in ' ~ max_rounds ~ ' rounds (' ~ ns.remaining
            ~ ' edges left); raise var cdp_identity_max_rounds') %}
    {% endif %}

    {#- Compose, walking back from the last round: a moved node's final rep is its round rep's final rep;
        a node that stayed put in a round but moved later keeps its later rep. Rows whose final rep is
        the node itself are left out, so every map stays a list of moved nodes. -#}
    {% set composed = namespace(table=maps[-1]) %}
    {% for round in range(ns.rounds - 2, -1, -1) %}
        {% set step = prefix ~ '__cc_f' ~ round %}
        {% set round_map = maps[round] %}
        {{ cdp_scratch_table(step,
            "select m.node, coalesce(f.rep, m.rep) as rep
             from " ~ round_map ~ " as m
             left join " ~ composed.table ~ " as f on f.node = m.rep
             where coalesce(f.rep, m.rep) <> m.node
             union all
             select f.node, f.rep
             from " ~ composed.table ~ " as f
             where not exists (select 1 from " ~ round_map ~ " as m where m.node = f.node)") }}
        {% do run_query('drop table if exists ' ~ composed.table) %}
        {% do run_query('drop table if exists ' ~ round_map) %}
        {% set composed.table = step %}
    {% endfor %}

    {#- Every node in an edge either moved or is the representative of its component. -#}
    {% set out = output if output else prefix ~ '__cc_out' %}
    {{ cdp_scratch_table(out,
        "select node as " ~ node_column ~ ", rep as " ~ rep_column ~ " from " ~ composed.table ~ "
         union all
         select distinct rep as " ~ node_column ~ ", rep as " ~ rep_column ~ " from " ~ composed.table) }}
    {% do run_query('drop table if exists ' ~ composed.table) %}
    {{ return({'table': out, 'rounds': ns.rounds}) }}
{% endmacro %}

{#- The edges of one round, each pointing from the endpoint later in the round's random order (`hi`)
    to the earlier one (`lo`, with its hash `lo_hash`). The order is (hash, node): strict, so a node's
    rep always comes before it and the maps have no cycles. -#}
{% macro cdp_cc_oriented(edges, seed) -%}
    (select
        case when a_first then node_b else node_a end as hi,
        case when a_first then node_a else node_b end as lo,
        case when a_first then h_a else h_b end as lo_hash
     from (
         select node_a, node_b, h_a, h_b, (h_a < h_b or (h_a = h_b and node_a < node_b)) as a_first
         from (
             select node_a, node_b,
                    {{ cdp_seeded_hash('node_a', seed) }} as h_a,
                    {{ cdp_seeded_hash('node_b', seed) }} as h_b
             from {{ edges }} as e
         ) as hashed
     ) as ordered)
{%- endmacro %}
