{#-
    Operation: connected components of any edge table, for benchmarks and ad-hoc graphs.
        dbt run-operation cdp_run_connected_components --args '{edges: bench.edges, output: bench.components}'
    `edges` needs bigint columns node_a, node_b. Writes `output` (node, rep: one row per node of an
    edge, rep shared by its component) and logs the rounds.
-#}
{% macro cdp_run_connected_components(edges, output, max_rounds=60) %}
    {%- set prefix = output ~ '_work' %}
    {%- set started = modules.datetime.datetime.now() %}
    {%- set cc = cdp_connected_components(
        'select node_a, node_b from ' ~ edges, prefix, max_rounds, output=output) %}
    {%- set seconds = (modules.datetime.datetime.now() - started).total_seconds() %}
    {{ log('cdp_connected_components rounds=' ~ cc['rounds'] ~ ' seconds=' ~ seconds, info=true) }}
{% endmacro %}
