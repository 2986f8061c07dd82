"""Plain-text tables and PII masking for CLI output."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

# Identifier types and columns whose values are personal data: masked unless the user asks.
PII_KINDS = {"email", "phone", "first_name", "last_name", "name", "address", "city", "postal_code", "ip"}


def mask(value: Any, kind: str = "") -> str:
    """Keep enough to recognise a value, hide enough that a screen share leaks nothing useful."""
    if value is None:
        return ""
    text = str(value)
    if kind == "email" or ("@" in text and kind in {"", "identifier"}):
        local, _, domain = text.partition("@")
        return f"{local[:1]}***@{domain}" if domain else "***"
    if kind == "phone":
        return f"{text[:3]}***{text[-2:]}" if len(text) > 5 else "***"
    if len(text) <= 2:
        return "*" * len(text)
    return f"{text[0]}***"


def is_pii(kind: str) -> bool:
    return kind in PII_KINDS or kind.endswith("email") or kind.endswith("phone")


def render_table(rows: Sequence[dict[str, Any]], columns: Iterable[str] | None = None) -> str:
    """Rows as an aligned text table."""
    if not rows:
        return "(no rows)"
    cols = list(columns or rows[0].keys())
    cells = [[_fmt(row.get(c)) for c in cols] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(cols)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines.extend("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in cells)
    return "\n".join(lines)


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:,.2f}"
    return str(value)
