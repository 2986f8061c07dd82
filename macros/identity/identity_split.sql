{#-
    Split the clusters that hold more than one anchor (identifiers that must stay apart).

    Every identifier of such a cluster joins the nearest anchor: a breadth-first search from all anchors
    at once over the cluster's edges, a node taking the smallest anchor key among the neighbours that
    reached it first. Each part is connected, every anchor keeps its own part, and the links between
    parts (the weakest links between the competing anchors) are cut and recorded with `reason`.

    assign:  table (identifier_key, cluster_key), updated in place.
    anchors: a query returning (identifier_key, anchor_key) of the anchors; anchors sharing an
             anchor_key (always_merge groups) grow one part together.
-#}
{% macro cdp_identity_split(prefix, assign, anchors_sql, reason, cut_links, max_rounds=200) %}
    {%- set anchors = prefix ~ '__split_anchors' %}
    {{ cdp_scratch_table(anchors,
        "with candidates as (
             select a.identifier_key, a.cluster_key, c.anchor_key
             from " ~ assign ~ " as a
             inner join (" ~ anchors_sql ~ ") as c on c.identifier_key = a.identifier_key
         )
         select identifier_key, cluster_key, anchor_key
         from candidates
         where cluster_key in (
             select cluster_key from candidates group by cluster_key having count(distinct anchor_key) > 1)") }}
    {%- set anchor_count = run_query('select count(*) from ' ~ anchors).columns[0].values()[0] %}
    {%- if anchor_count == 0 %}
        {% do run_query('drop table if exists ' ~ anchors) %}
        {{ return(0) }}
    {%- endif %}
    {{ log('identity: splitting clusters with ' ~ anchor_count ~ ' competing anchors (' ~ reason ~ ')', info=true) }}

    {#- The members and edges of the affected clusters. -#}
    {%- set members = prefix ~ '__split_members' %}
    {{ cdp_scratch_table(members,
        "select identifier_key, cluster_key from " ~ assign ~ "
         where cluster_key in (select cluster_key from " ~ anchors ~ ")") }}
    {%- set edges = prefix ~ '__split_edges' %}
    {{ cdp_scratch_table(edges,
        "select e.identifier_key_a as src, e.identifier_key_b as dst
         from " ~ ref('int_identity_edges') ~ " as e
         inner join " ~ members ~ " as m on m.identifier_key = e.identifier_key_a
         union all
         select e.identifier_key_b as src, e.identifier_key_a as dst
         from " ~ ref('int_identity_edges') ~ " as e
         inner join " ~ members ~ " as m on m.identifier_key = e.identifier_key_b") }}

    {#- Breadth-first search from all anchors at once. -#}
    {%- set ns = namespace(labels=prefix ~ '__split_l0') %}
    {{ cdp_scratch_table(ns.labels, "select identifier_key, anchor_key from " ~ anchors) }}
    {%- for round in range(max_rounds) %}
        {%- set frontier = prefix ~ '__split_frontier' %}
        {{ cdp_scratch_table(frontier,
            "select e.dst as identifier_key, min(l.anchor_key) as anchor_key
             from " ~ ns.labels ~ " as l
             inner join " ~ edges ~ " as e on e.src = l.identifier_key
             left join " ~ ns.labels ~ " as seen on seen.identifier_key = e.dst
             where seen.identifier_key is null
             group by e.dst") }}
        {%- set reached = run_query('select count(*) from ' ~ frontier).columns[0].values()[0] %}
        {%- if reached == 0 %}
            {% do run_query('drop table if exists ' ~ frontier) %}
            {% break %}
        {%- endif %}
        {%- set next_labels = prefix ~ '__split_l' ~ (round + 1) %}
        {{ cdp_scratch_table(next_labels,
            "select identifier_key, anchor_key from " ~ ns.labels ~ "
             union all select identifier_key, anchor_key from " ~ frontier) }}
        {% do run_query('drop table if exists ' ~ ns.labels) %}
        {% do run_query('drop table if exists ' ~ frontier) %}
        {%- set ns.labels = next_labels %}
    {%- endfor %}

    {#- Cut the links between parts, then move every member to its anchor's part. -#}
    {% do run_query(
        "insert into " ~ cut_links ~ "
         select distinct least(e.src, e.dst), greatest(e.src, e.dst), '" ~ reason ~ "'
         from " ~ edges ~ " as e
         inner join " ~ ns.labels ~ " as ls on ls.identifier_key = e.src
         inner join " ~ ns.labels ~ " as ld on ld.identifier_key = e.dst
         where ls.anchor_key <> ld.anchor_key") %}
    {%- set updated = prefix ~ '__split_assign' %}
    {{ cdp_scratch_table(updated,
        "select a.identifier_key,
                case
                    when m.identifier_key is null then a.cluster_key
                    else coalesce(l.anchor_key, a.identifier_key)
                end as cluster_key
         from " ~ assign ~ " as a
         left join " ~ members ~ " as m on m.identifier_key = a.identifier_key
         left join " ~ ns.labels ~ " as l on l.identifier_key = a.identifier_key") }}
    {{ cdp_scratch_table(assign, "select identifier_key, cluster_key from " ~ updated) }}
    {%- for table in [updated, ns.labels, edges, members, anchors] %}
        {% do run_query('drop table if exists ' ~ table) %}
    {%- endfor %}
    {{ return(anchor_count) }}
{% endmacro %}
