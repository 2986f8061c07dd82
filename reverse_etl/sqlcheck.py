"""Check a user-written SQL filter before it reaches the warehouse.

`cdp segment preview --where ...` splices a filter into a query over segment members. A filter is
parsed with sqlglot (DuckDB dialect) and accepted only when every node of its tree is on an allowlist:
column names, literals, comparisons, boolean and arithmetic operators, IN lists, LIKE/ILIKE, IS NULL,
BETWEEN, CASE, CAST and a few side-effect-free scalar functions. Anything else (a statement, a
subquery, a table function such as read_csv, a placeholder, a second statement after a semicolon) is
refused with a message that names it. The filter that runs is sqlglot's re-rendering of the checked
tree, never the text the user typed, so comments and stray tokens cannot change the query around it.
"""

from __future__ import annotations

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError
from sqlglot.tokens import TokenType

DIALECT = "duckdb"

# Side-effect-free scalar functions, by sqlglot's expression class.
ALLOWED_FUNCTIONS: dict[type[exp.Expression], str] = {
    exp.Lower: "lower",
    exp.Upper: "upper",
    exp.Trim: "trim",
    exp.Coalesce: "coalesce",
    exp.Nullif: "nullif",
    exp.Length: "length",
    exp.Abs: "abs",
    exp.Round: "round",
    exp.Greatest: "greatest",
    exp.Least: "least",
    exp.DateDiff: "date_diff",
    exp.Year: "year",
    exp.Month: "month",
    exp.Day: "day",
    exp.Contains: "contains",
    exp.StartsWith: "starts_with",
    exp.EndsWith: "ends_with",
    exp.CurrentDate: "current_date",
    exp.CurrentTimestamp: "current_timestamp",
    exp.Cast: "cast",
    exp.TryCast: "try_cast",
    exp.If: "case/if",
    exp.Case: "case",
}

# Logical operators and comparisons: allowed anywhere, and each evaluates to a boolean.
BOOLEAN_OPERATORS: tuple[type[exp.Expression], ...] = (
    exp.And,
    exp.Or,
    exp.Not,
    exp.EQ,
    exp.NEQ,
    exp.GT,
    exp.GTE,
    exp.LT,
    exp.LTE,
    exp.NullSafeEQ,
    exp.NullSafeNEQ,
    exp.Is,
    exp.In,
    exp.Like,
    exp.ILike,
    exp.Between,
)

# Operators and leaves that cannot read or change anything beyond the row they are evaluated on.
ALLOWED_NODES: tuple[type[exp.Expression], ...] = (
    exp.Column,
    exp.Identifier,
    exp.Literal,
    exp.Boolean,
    exp.Null,
    exp.Paren,
    exp.Tuple,
    exp.DataType,
    exp.Interval,
    *BOOLEAN_OPERATORS,
    exp.Add,
    exp.Sub,
    exp.Mul,
    exp.Div,
    exp.IntDiv,
    exp.Mod,
    exp.Neg,
    exp.DPipe,
)

# Roots that evaluate to a boolean (a bare column or CASE may too; DuckDB checks its type).
PREDICATES: tuple[type[exp.Expression], ...] = (
    *BOOLEAN_OPERATORS,
    exp.Boolean,
    exp.Column,
    exp.Contains,
    exp.StartsWith,
    exp.EndsWith,
    exp.Case,
    exp.If,
)

HOW_TO_FIX = (
    "write one condition over the segment's columns, e.g. \"orders > 1 and country = 'DE'\" "
    "(columns, literals, comparisons, and/or/not, in (...), like/ilike, is null, between, case, cast and "
    f"the functions {', '.join(sorted(set(ALLOWED_FUNCTIONS.values())))})"
)


class UnsafeFilterError(ValueError):
    """A --where filter that is not a single read-only boolean expression."""


def _refuse(what: str) -> UnsafeFilterError:
    return UnsafeFilterError(f"--where: {what} is not allowed; {HOW_TO_FIX}.")


def _describe(node: exp.Expression) -> str:
    if isinstance(node, (exp.Select, exp.Subquery, exp.Union, exp.Exists)) or node.find(exp.Select):
        return "a subquery or SELECT"
    if isinstance(node, exp.Placeholder):
        return f"the parameter placeholder {node.sql(dialect=DIALECT)!r}"
    if isinstance(node, exp.Star):
        return "'*'"
    if isinstance(node, exp.Func):
        name = node.name if isinstance(node, exp.Anonymous) else node.sql_name()
        return f"the function {name.lower()}()"
    return f"{node.key.upper()} ({node.sql(dialect=DIALECT)!r})"


def check_where(expression: str) -> str:
    """The filter re-rendered by sqlglot for DuckDB, or UnsafeFilterError naming what is refused."""
    text = (expression or "").strip()
    if not text:
        raise UnsafeFilterError(f"--where: the filter is empty; {HOW_TO_FIX}.")
    try:
        tokens = sqlglot.tokenize(text, read=DIALECT)
    except SqlglotError as exc:
        raise UnsafeFilterError(f"--where: cannot read {text!r}: {exc}; {HOW_TO_FIX}.") from exc
    if any(t.token_type == TokenType.SEMICOLON for t in tokens):
        raise _refuse("a semicolon (more than one statement)")
    try:
        trees = sqlglot.parse(text, read=DIALECT)
    except SqlglotError as exc:
        raise UnsafeFilterError(f"--where: cannot parse {text!r}: {exc}; {HOW_TO_FIX}.") from exc
    trees = [t for t in trees if t is not None]
    if len(trees) != 1:
        raise _refuse("more than one statement")
    tree = trees[0]
    for node in tree.walk():
        if isinstance(node, exp.Column) and (node.table or node.args.get("db") or node.args.get("catalog")):
            raise _refuse(f"the qualified column {node.sql(dialect=DIALECT)!r} (name the column alone)")
        if isinstance(node, exp.Var) and node.arg_key == "unit":
            continue  # the unit of date_diff or an interval: 'day', month, ...
        if type(node) in ALLOWED_FUNCTIONS or isinstance(node, ALLOWED_NODES):
            continue
        raise _refuse(_describe(node))
    root = tree.unnest()
    if not isinstance(root, PREDICATES):
        raise _refuse(f"{root.sql(dialect=DIALECT)!r} as the whole filter (it is not a true/false condition)")
    return tree.sql(dialect=DIALECT, comments=False)
