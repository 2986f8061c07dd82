from __future__ import annotations

from pathlib import Path

import pytest

from reverse_etl.dbt import DbtResult, run_dbt

PROJECT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def dbt_target(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One dbt target directory for the session, so partial parsing is reused between builds."""
    return tmp_path_factory.mktemp("dbt_target")


def dbt_build(database: Path, target: Path, *args: str, project: Path = PROJECT) -> DbtResult:
    """`dbt build` on a test warehouse; fails the test with dbt's own messages when it fails."""
    result = run_dbt(
        ["build", "--target-path", str(target), "--log-path", str(target / "logs"), *args],
        project=project,
        database=database,
    )
    if not result.success:
        pytest.fail("dbt build failed:\n" + "\n".join(result.failures) + f"\n{result.exception or ''}")
    return result
