"""A warehouse-native composable CDP.

The warehouse layer (identity, profiles, segments) is the dbt project beside this package; this package
holds the Python side: the CLI, the raw-data generator, the reverse-ETL sync engine, its destinations and
their emulators.
"""

from __future__ import annotations

__version__ = "0.1.0"
