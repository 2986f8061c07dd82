"""Identity resolution on hand-made graphs, through the real `dbt build` on DuckDB."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import duckdb
import pytest

from tests.conftest import PROJECT, dbt_build
from tests.rawdata import RawData

IDENTITY = [
    "--select",
    "+customer_id_changes",
    "+identity_rejections",
    "--exclude",
    "test_type:unit",
    "--indirect-selection",
    "cautious",
    # One set of vars for every build here, so dbt's partial parsing is reused between builds.
    "--vars",
    "{cdp_identity_max_cluster_size: 5000}",
]


def graph(database: Path) -> dict[tuple[str, str], str]:
    con = duckdb.connect(str(database), read_only=True)
    try:
        rows = con.execute(
            "select identifier_type, identifier_value, customer_id from marts.identity_graph"
        ).fetchall()
    finally:
        con.close()
    return {(t, v): c for t, v, c in rows}


def query(database: Path, sql: str) -> list[tuple]:
    con = duckdb.connect(str(database), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


@pytest.fixture(scope="module")
def messy(tmp_path_factory: pytest.TempPathFactory, dbt_target: Path) -> Path:
    """One warehouse holding every hand-made case, built once."""
    db = tmp_path_factory.mktemp("identity") / "cdp.duckdb"
    raw = RawData(db)
    # A person browsing on two devices, then signing up on one and giving the email on the other.
    raw.page(0, anonymous_id="dev-phone")
    raw.page(1, anonymous_id="dev-laptop")
    raw.identify(10, anonymous_id="dev-phone", user_id="u-ann", email=" Ann@Example.org ")
    raw.identify(20, anonymous_id="dev-laptop", email="ann@example.org", phone="(415) 555-0123")
    # A kiosk used by 12 people who each log in: a hub, never a merge path.
    for i in range(12):
        raw.identify(100 + i, anonymous_id="kiosk-1", user_id=f"u-kiosk-{i}")
    # Junk: a placeholder phone given by two unrelated people.
    raw.identify(200, anonymous_id="dev-j1", user_id="u-j1", phone="+1 555 555 5555")
    raw.identify(201, anonymous_id="dev-j2", user_id="u-j2", phone="555-555-5555")
    # A family tablet shared by two accounts: under the hub threshold, cut by the user_id limit.
    raw.identify(300, anonymous_id="tablet", user_id="u-mum")
    raw.identify(301, anonymous_id="tablet", user_id="u-son")
    raw.identify(302, anonymous_id="mum-phone", user_id="u-mum")
    # A chain of 600 devices, each linked to the next through an email: one person, long diameter.
    for i in range(600):
        raw.identify(400 + i, anonymous_id=f"chain-dev-{i}", email=f"chain{i}@mail.org")
        raw.identify(400 + i, anonymous_id=f"chain-dev-{i + 1}", email=f"chain{i}@mail.org")
    raw.flush()
    dbt_build(db, dbt_target, *IDENTITY)
    return db


def test_devices_email_and_account_stitch_into_one_customer(messy: Path) -> None:
    g = graph(messy)
    ann = g[("user_id", "u-ann")]
    assert g[("anonymous_id", "dev-phone")] == ann
    assert g[("anonymous_id", "dev-laptop")] == ann
    assert g[("email", "ann@example.org")] == ann
    assert g[("phone", "+14155550123")] == ann


def test_kiosk_is_a_hub_and_merges_nobody(messy: Path) -> None:
    g = graph(messy)
    kiosk_users = {g[("user_id", f"u-kiosk-{i}")] for i in range(12)}
    assert len(kiosk_users) == 12
    assert ("anonymous_id", "kiosk-1") not in g
    rows = query(
        messy, "select reason, detail from marts.identity_rejections where identifier_value = 'kiosk-1'"
    )
    assert rows and rows[0][0] == "hub" and "12 distinct stronger identifiers" in rows[0][1]


def test_junk_phone_is_blocklisted(messy: Path) -> None:
    g = graph(messy)
    assert g[("user_id", "u-j1")] != g[("user_id", "u-j2")]
    assert ("phone", "+15555555555") not in g
    rows = query(
        messy, "select reason from marts.identity_rejections where identifier_value = '+15555555555'"
    )
    assert rows == [("blocklist",)]


def test_user_id_limit_cuts_the_weakest_link(messy: Path) -> None:
    g = graph(messy)
    assert g[("user_id", "u-mum")] != g[("user_id", "u-son")]
    assert g[("anonymous_id", "mum-phone")] == g[("user_id", "u-mum")]
    # The tablet stays with one of them; the cut is recorded against the weaker identifier.
    assert g[("anonymous_id", "tablet")] in {g[("user_id", "u-mum")], g[("user_id", "u-son")]}
    rows = query(
        messy,
        "select identifier_type, identifier_value, linked_identifier_type from marts.identity_rejections "
        "where reason = 'limit:user_id'",
    )
    assert rows == [("anonymous_id", "tablet", "user_id")]


def test_long_chain_converges_into_one_customer(messy: Path) -> None:
    g = graph(messy)
    chain = {c for (t, v), c in g.items() if v.startswith("chain")}
    assert len(chain) == 1
    assert sum(1 for (_, v) in g if v.startswith("chain")) == 1201


def test_quality_gates_stop_the_build_on_a_giant_cluster(messy: Path, dbt_target: Path) -> None:
    from reverse_etl.dbt import run_dbt

    result = run_dbt(
        [
            "build",
            "--target-path",
            str(dbt_target),
            *IDENTITY[:-2],
            "--vars",
            "{cdp_identity_max_cluster_size: 100}",
        ],
        database=messy,
    )
    assert not result.success
    assert any("assert_largest_cluster_within_bound" in f for f in result.failures)


def test_merge_then_split_keeps_the_older_id(tmp_path: Path, dbt_target: Path) -> None:
    db = tmp_path / "cdp.duckdb"
    raw = RawData(db)
    raw.identify(0, anonymous_id="a-old", email="old@mail.org")  # the older customer
    raw.identify(50, user_id="u-new", email="new@mail.org")  # a newer one
    raw.flush()
    dbt_build(db, dbt_target, *IDENTITY)
    first = graph(db)
    old_id, new_id = first[("email", "old@mail.org")], first[("user_id", "u-new")]
    assert old_id != new_id

    link = raw.identify(60, anonymous_id="a-old", user_id="u-new")  # the same person after all
    raw.flush()
    dbt_build(db, dbt_target, *IDENTITY)
    merged = graph(db)
    assert merged[("user_id", "u-new")] == old_id == merged[("email", "new@mail.org")]
    changes = query(db, "select old_customer_id, new_customer_id, reason from marts.customer_id_changes")
    assert (new_id, old_id, "merge") in changes

    raw.execute("delete from segment.identifies where id = ?", [link])  # the link was wrong
    dbt_build(db, dbt_target, *IDENTITY)
    split = graph(db)
    assert split[("email", "old@mail.org")] == old_id  # the part holding the anchor keeps the id
    assert split[("user_id", "u-new")] == new_id
    changes = query(db, "select old_customer_id, new_customer_id, reason from marts.customer_id_changes")
    assert (old_id, new_id, "split") in changes


def test_full_rebuilds_give_identical_graphs(messy: Path, dbt_target: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy.duckdb"
    shutil.copy(messy, copy)
    dbt_build(copy, dbt_target, *IDENTITY, "--full-refresh")
    assert graph(copy) == graph(messy)


def test_overrides_never_and_always_merge(tmp_path: Path, dbt_target: Path) -> None:
    project = tmp_path / "project"
    shutil.copytree(
        PROJECT, project, ignore=shutil.ignore_patterns("target", "warehouse", ".venv", "*.duckdb", "logs")
    )
    (project / "seeds" / "identity" / "identity_overrides.csv").write_text(
        "rule,identifier_type_a,identifier_value_a,identifier_type_b,identifier_value_b,note\n"
        "never_merge,email,sam@mail.org,email,alex@mail.org,two people share a laptop\n"
        "always_merge,user_id,u-old-account,user_id,u-new-account,account migration\n"
    )
    db = tmp_path / "cdp.duckdb"
    raw = RawData(db)
    raw.identify(0, anonymous_id="laptop", email="sam@mail.org")
    raw.identify(1, anonymous_id="laptop", email="alex@mail.org")
    raw.identify(2, user_id="u-old-account", email="pat@mail.org")
    raw.identify(3, user_id="u-new-account")
    raw.flush()
    dbt_build(db, tmp_path / "target", *IDENTITY, project=project)
    g = graph(db)
    assert g[("email", "sam@mail.org")] != g[("email", "alex@mail.org")]
    assert g[("user_id", "u-old-account")] == g[("user_id", "u-new-account")] == g[("email", "pat@mail.org")]
    rows = query(db, "select reason from marts.identity_rejections where reason = 'never_merge'")
    assert rows == [("never_merge",)]


def union_find_components(edges: list[tuple[int | None, int | None]]) -> set[frozenset[int]]:
    """The expected components, by plain union-find (self-loops and null ends ignored)."""
    parent: dict[int, int] = {}

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in edges:
        if a is None or b is None or a == b:
            continue
        parent.setdefault(a, a)
        parent.setdefault(b, b)
        parent[find(a)] = find(b)
    groups: dict[int, set[int]] = {}
    for node in parent:
        groups.setdefault(find(node), set()).add(node)
    return {frozenset(g) for g in groups.values()}


def run_components(
    tmp_path: Path, dbt_target: Path, capfd: pytest.CaptureFixture[str], edges: list[tuple]
) -> tuple[list[tuple[int, int]], int]:
    """cdp_run_connected_components on an edge table; returns its (node, rep) rows and its rounds."""
    from reverse_etl.dbt import run_dbt

    db = tmp_path / "graph.duckdb"
    con = duckdb.connect(str(db))
    try:
        con.execute("create schema graphs")
        con.execute("create table graphs.edges (node_a bigint, node_b bigint)")
        con.executemany("insert into graphs.edges values (?, ?)", edges)
    finally:
        con.close()
    capfd.readouterr()
    result = run_dbt(
        [
            "run-operation",
            "cdp_run_connected_components",
            "--args",
            "{edges: graphs.edges, output: graphs.components}",
            "--target-path",
            str(dbt_target),
        ],
        database=db,
    )
    log = capfd.readouterr().out
    assert result.success, f"{result.exception}\n{log}"
    match = re.search(r"cdp_connected_components rounds=(\d+)", log)
    assert match, log
    rows = query(db, "select node, rep from graphs.components")
    leftovers = query(db, "select table_name from information_schema.tables where table_name like '%work%'")
    assert leftovers == [], "scratch tables left behind"
    return rows, int(match.group(1))


def check_components(rows: list[tuple[int, int]], edges: list[tuple]) -> None:
    """One row per node of an edge; nodes share a rep exactly when they are connected; the rep is a
    node of its own component."""
    expected = union_find_components(edges)
    nodes = [node for node, _ in rows]
    assert len(nodes) == len(set(nodes)), "a node has more than one row"
    by_rep: dict[int, set[int]] = {}
    for node, rep in rows:
        by_rep.setdefault(rep, set()).add(node)
    assert {frozenset(g) for g in by_rep.values()} == expected
    assert all(rep in members for rep, members in by_rep.items())


def test_connected_components_on_hand_made_graphs(
    tmp_path: Path, dbt_target: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    import random

    rng = random.Random(7)
    edges: list[tuple] = []
    # A chain with consecutive ids: a fixed order of the ids would shrink it by one node per round.
    edges += [(i, i + 1) for i in range(1, 5000)]
    # A star given in both directions, twice, and with a self-loop: one component of 51 nodes.
    edges += [(10_000, 10_001 + i) for i in range(50)] * 2 + [(10_001 + i, 10_000) for i in range(50)]
    edges += [(10_000, 10_000)]
    # A cycle, a clique, negative ids and the extremes of bigint (the packed min must keep their sign).
    edges += [(20_000 + i, 20_000 + (i + 1) % 7) for i in range(7)]
    edges += [(30_000 + i, 30_000 + j) for i in range(6) for j in range(i + 1, 6)]
    edges += [(-(2**63) + 1, 2**63 - 1), (2**63 - 1, -5), (-5, -6), (-7, -8)]
    # A node with only a self-loop, and null ends: not nodes of any edge.
    edges += [(40_000, 40_000), (None, 40_001), (40_002, None)]
    # Random 63-bit ids, like identifier keys, in a sparse random graph (many small trees).
    keys = [rng.randrange(-(2**62), 2**62) for _ in range(3000)]
    edges += [(rng.choice(keys), rng.choice(keys)) for _ in range(2500)]

    rows, rounds = run_components(tmp_path, dbt_target, capfd, edges)
    check_components(rows, edges)
    assert rounds <= 25
    assert (40_000,) not in {(node,) for node, _ in rows}


def test_connected_components_of_nothing(
    tmp_path: Path, dbt_target: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    rows, rounds = run_components(tmp_path, dbt_target, capfd, [(1, 1), (None, 2)])
    assert rows == []
    assert rounds == 1
