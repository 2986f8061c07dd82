"""The realistic raw-data generator behind ``cdp generate``.

It writes the tables described in ``docs/raw_data.md`` (Segment events, CRM contacts, shop orders,
email-service events, consent changes) plus a ``ground_truth`` schema saying which person every record
and identifier belongs to, so that identity resolution and profiles can be measured, not eyeballed.
"""

from __future__ import annotations

from reverse_etl.datagen.core import DEFAULT_START, GenerateError, GenerationSummary, generate
from reverse_etl.datagen.schema import TABLES

__all__ = ["DEFAULT_START", "TABLES", "GenerateError", "GenerationSummary", "generate"]
