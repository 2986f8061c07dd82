"""The whole CDP as a user runs it: `cdp demo` on generated data, then the CLI on what it built."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from reverse_etl.cli import cli
from reverse_etl.identity_accuracy import measure
from reverse_etl.warehouse import Warehouse

CUSTOMERS = 10_000


@pytest.fixture(scope="module")
def demo_warehouse(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    database = tmp_path_factory.mktemp("demo") / "elsewhere" / "cdp.duckdb"
    runner = CliRunner()
    result = runner.invoke(
        cli,
        ["demo", "--customers", str(CUSTOMERS)],
        env={"CDP_DUCKDB_PATH": str(database)},
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    return database, result.output


def test_demo_writes_where_cdp_duckdb_path_says_and_summarises(demo_warehouse: tuple[Path, str]) -> None:
    database, output = demo_warehouse
    assert database.exists()
    assert "customers stitched from" in output
    assert "high_value_customers" in output
    assert "the emulator holds" in output
    assert "Next:" in output


def test_identity_accuracy_against_ground_truth(demo_warehouse: tuple[Path, str]) -> None:
    database, _ = demo_warehouse
    with Warehouse(database) as wh:
        accuracy = measure(wh)
    assert accuracy.identifiers > 3 * CUSTOMERS
    assert accuracy.precision >= 0.999, accuracy
    assert accuracy.recall >= 0.99, accuracy


def test_profiles_one_row_per_customer(demo_warehouse: tuple[Path, str]) -> None:
    database, _ = demo_warehouse
    with Warehouse(database, read_only=True) as wh:
        customers = wh.scalar("select count(distinct customer_id) from marts.identity_graph")
        profiles = wh.scalar("select count(*) from marts.customer_profiles")
        distinct = wh.scalar("select count(distinct customer_id) from marts.customer_profiles")
    assert customers == profiles == distinct


def test_identity_explain_and_stats(demo_warehouse: tuple[Path, str]) -> None:
    database, _ = demo_warehouse
    with Warehouse(database, read_only=True) as wh:
        email = wh.scalar(
            "select g.identifier_value from marts.identity_graph g join ("
            "  select customer_id from marts.identity_graph group by customer_id having count(*) >= 4 limit 1"
            ") c using (customer_id) where g.identifier_type = 'email' limit 1"
        )
    runner = CliRunner()
    env = {"CDP_DUCKDB_PATH": str(database)}
    explained = runner.invoke(cli, ["identity", "explain", email.upper()], env=env)
    assert explained.exit_code == 0, explained.output
    assert "customer cus_" in explained.output
    assert "seen together on" in explained.output
    assert email not in explained.output  # masked by default
    shown = runner.invoke(cli, ["identity", "explain", email, "--show-pii"], env=env)
    assert email in shown.output
    stats = runner.invoke(cli, ["identity", "stats"], env=env)
    assert stats.exit_code == 0, stats.output
    assert "Cluster size" in stats.output and "hub" in stats.output
    missing = runner.invoke(cli, ["identity", "explain", "nobody@nowhere.invalid"], env=env)
    assert missing.exit_code != 0 and "no identifier" in missing.output


def _commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = [prefix]
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            found.extend(_commands(command, (*prefix, name)))
        else:
            found.append((*prefix, name))
    return found


@pytest.mark.parametrize("path", _commands(cli), ids=lambda p: " ".join(p) or "cdp")
def test_every_command_has_help(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(cli, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output


def test_version() -> None:
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0 and "cdp, version" in result.output


def test_demo_runs_again_on_the_same_warehouse(tmp_path: Path) -> None:
    """A second `cdp demo` rebuilds incrementally and resends to its new, empty emulator."""
    database = tmp_path / "cdp.duckdb"
    runner = CliRunner()
    for _ in range(2):
        result = runner.invoke(
            cli,
            ["demo", "--customers", "500"],
            env={"CDP_DUCKDB_PATH": str(database)},
            catch_exceptions=False,
        )
        assert result.exit_code == 0, result.output
        assert "exactly the sendable segment" in result.output
