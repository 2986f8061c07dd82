"""DuckDB-dialect SQL, as the other engines run it.

The reverse-ETL layer writes its SQL once, in DuckDB's dialect. sqlglot transpiles most of it; the few
constructs it cannot map faithfully are rewritten here on the syntax tree:

* ``hash(a, b, ...)``: a 64-bit hash of the values, null-safe. Each engine has its own function (so a
  state table written by one engine is only compared by that engine, which is always the case).
* ``to_json(struct_pack(k := v, ...))``: a JSON object as text, nulls kept as ``null``.
* ``ubigint``: PostgreSQL and Spark have no unsigned 64-bit integer; their hashes are signed ``bigint``.
* Spark: no sequences (the warehouse numbers rows itself), no ``[not] materialized`` CTE hints, and a
  temporary table is a cached view.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import sqlglot
from sqlglot import exp

from reverse_etl.warehouse.base import WarehouseError

# Separator and null marker of the text a hash is taken over (control characters: not in real data).
_SEP, _NULL = "\x1f", "\x1e"

# Spark table property listing the columns the warehouse numbers (a sequence elsewhere).
SEQUENCE_PROPERTY = "cdp.sequence_columns"


@dataclass(frozen=True)
class Statement:
    """One statement in the target dialect, with what the engine must do beyond running it."""

    sql: str
    kind: str = "sql"  # sql | skip | update | delete
    table: str = ""  # update/delete: the table rewritten
    condition: str = ""  # update/delete: the WHERE, in the target dialect ("" = every row)
    assignments: tuple[tuple[str, str], ...] = field(default_factory=tuple)  # update: column, expression
    sequence_columns: tuple[str, ...] = field(default_factory=tuple)  # create table: seq-numbered cols


def _hash_args(args: list[exp.Expression], text_type: str) -> exp.Expression:
    parts = [
        exp.Coalesce(
            this=exp.Cast(this=a.copy(), to=exp.DataType.build(text_type)),
            expressions=[exp.Literal.string(_NULL)],
        )
        for a in args
    ]
    # concat_ws spelled verbatim: sqlglot's ConcatWs would add DuckDB's null semantics and repeat the
    # arguments (and so the ``?`` parameters) in a CASE.
    return exp.Anonymous(this="concat_ws", expressions=[exp.Literal.string(_SEP), *parts])


def _rewrite(node: exp.Expression, dialect: str) -> exp.Expression:
    if isinstance(node, exp.Anonymous) and node.name.lower() == "hash":
        text = "text" if dialect == "postgres" else "string"
        joined = _hash_args(list(node.expressions), text)
        if dialect == "postgres":
            return exp.Anonymous(this="hashtextextended", expressions=[joined, exp.Literal.number(0)])
        return exp.Anonymous(this="xxhash64", expressions=[joined])
    if (
        isinstance(node, exp.Anonymous | exp.JSONFormat)
        and (node.name.lower() == "to_json" or isinstance(node, exp.JSONFormat))
        and isinstance(
            node.this if isinstance(node, exp.JSONFormat) else (node.expressions or [None])[0], exp.Struct
        )
    ):
        struct = node.this if isinstance(node, exp.JSONFormat) else node.expressions[0]
        pairs: list[tuple[str, exp.Expression]] = []
        for item in struct.expressions:
            if isinstance(item, exp.PropertyEQ):
                pairs.append((item.this.name, item.expression.copy()))
            elif isinstance(item, exp.Alias):
                pairs.append((item.alias, item.this.copy()))
            else:
                raise WarehouseError(
                    f"to_json(struct_pack(...)) needs named members, got {item.sql('duckdb')}"
                )
        if dialect == "postgres":
            args: list[exp.Expression] = []
            for key, value in pairs:
                args.extend([exp.Literal.string(key), value])
            built = exp.Anonymous(this="json_build_object", expressions=args)
            return exp.Cast(this=built, to=exp.DataType.build("text"))
        struct_sql = exp.Struct(expressions=[exp.alias_(v, k, quoted=True) for k, v in pairs])
        options = exp.Anonymous(
            this="map", expressions=[exp.Literal.string("ignoreNullFields"), exp.Literal.string("false")]
        )
        return exp.Anonymous(this="to_json", expressions=[struct_sql, options])
    if isinstance(node, exp.DataType) and node.this in (exp.DataType.Type.UBIGINT, exp.DataType.Type.UINT):
        return exp.DataType.build("bigint")
    if isinstance(node, exp.DataType) and node.this == exp.DataType.Type.INT128:
        return exp.DataType.build("decimal(38, 0)")
    if isinstance(node, exp.Subquery) and not node.alias and isinstance(node.parent, exp.From | exp.Join):
        # DuckDB lets a derived table go unnamed; PostgreSQL does not.
        node.set("alias", exp.TableAlias(this=exp.to_identifier(f"_subquery_{id(node) % 100_000}")))
    if dialect == "spark" and isinstance(node, exp.CTE) and node.args.get("materialized") is not None:
        node.set("materialized", None)
    return node


def _is_nextval(constraint: exp.Expression) -> bool:
    kind = constraint.args.get("kind")
    return (
        isinstance(kind, exp.DefaultColumnConstraint)
        and isinstance(kind.this, exp.Anonymous)
        and kind.this.name.lower() == "nextval"
    )


def _spark_statement(tree: exp.Expression) -> Statement | None:
    """Spark specifics that are more than a different spelling."""
    if isinstance(tree, exp.Create) and tree.kind == "SEQUENCE":
        return Statement("", kind="skip")
    if isinstance(tree, exp.Create) and tree.kind == "TABLE" and isinstance(tree.this, exp.Schema):
        sequence_columns = []
        for column in tree.this.expressions:
            if not isinstance(column, exp.ColumnDef):
                continue
            constraints = column.args.get("constraints") or []
            kept = [c for c in constraints if not _is_nextval(c)]
            if len(kept) != len(constraints):
                sequence_columns.append(column.name)
            # Spark's Parquet tables take no primary key or NOT NULL on created columns.
            kept = [
                c
                for c in kept
                if not isinstance(
                    c.args.get("kind"), exp.PrimaryKeyColumnConstraint | exp.NotNullColumnConstraint
                )
            ]
            column.set("constraints", kept)
        sql = tree.sql("spark")
        if " USING " not in sql.upper():
            sql += " USING PARQUET"
        if sequence_columns:
            sql += f" TBLPROPERTIES ('{SEQUENCE_PROPERTY}' = '{','.join(sequence_columns)}')"
        return Statement(sql, sequence_columns=tuple(sequence_columns))
    if isinstance(tree, exp.Create) and tree.kind == "TABLE" and isinstance(tree.expression, exp.Query):
        props = tree.args.get("properties")
        if props and any(isinstance(p, exp.TemporaryProperty) for p in props.expressions):
            return Statement(f"CACHE TABLE {tree.this.sql('spark')} AS {tree.expression.sql('spark')}")
    if isinstance(tree, exp.Delete):
        where = tree.args.get("where")
        return Statement(
            "",
            kind="delete",
            table=tree.this.sql("spark"),
            condition=where.this.sql("spark") if where else "",
        )
    if isinstance(tree, exp.Update):
        where = tree.args.get("where")
        assignments = tuple((eq.this.name, eq.expression.sql("spark")) for eq in tree.expressions)
        return Statement(
            "",
            kind="update",
            table=tree.this.sql("spark"),
            condition=where.this.sql("spark") if where else "",
            assignments=assignments,
        )
    return None


@functools.lru_cache(maxsize=512)
def translate(sql: str, dialect: str) -> tuple[Statement, ...]:
    """The statements of DuckDB-dialect ``sql`` for ``dialect`` (``postgres`` or ``spark``); ``?``
    parameters stay ``?`` (the engine binds them)."""
    try:
        trees = sqlglot.parse(sql, read="duckdb")
    except sqlglot.errors.ParseError as exc:
        raise WarehouseError(f"cannot translate SQL for {dialect}: {exc}\n{sql}") from exc
    out: list[Statement] = []
    for tree in trees:
        if tree is None:
            continue
        tree = tree.transform(lambda n: _rewrite(n, dialect))
        if isinstance(tree, exp.Transaction | exp.Commit | exp.Rollback):
            raise WarehouseError("use Warehouse.transaction() rather than transaction statements")
        if dialect == "spark":
            special = _spark_statement(tree)
            if special is not None:
                out.append(special)
                continue
            out.append(Statement(tree.sql("spark")))
        else:
            if isinstance(tree, exp.Create) and tree.args.get("replace") and tree.kind == "TABLE":
                tree.set("replace", False)
                out.append(Statement(f"DROP TABLE IF EXISTS {tree.this.sql('postgres')}"))
            out.append(Statement(_postgres_sql(tree)))
    return tuple(out)


def relation(table: str, dialect: str) -> str:
    """A DuckDB-dialect table name (``schema.table``, quoted or not) as ``dialect`` writes it."""
    return exp.to_table(table, dialect="duckdb").sql(dialect)


def inline_parameters(sql: str, params: list) -> str:
    """DuckDB-dialect ``sql`` with its ``?`` parameters replaced by literals, in textual order (for
    statements an engine rewrites, where a parameter may end up in several places)."""
    trees = [t for t in sqlglot.parse(sql, read="duckdb") if t is not None]
    values = iter(params)
    out = []
    for tree in trees:
        holders = list(tree.find_all(exp.Placeholder, bfs=False))  # depth-first: textual order
        for holder in holders:
            holder.replace(exp.convert(next(values)))
        out.append(tree.sql("duckdb"))
    if next(values, _END) is not _END:
        raise WarehouseError(f"more parameters than placeholders in:\n{sql}")
    return ";\n".join(out)


_END = object()
_PARAM = "__cdp_param__"


def _postgres_sql(tree: exp.Expression) -> str:
    """PostgreSQL text for psycopg2: ``%s`` parameters and literal ``%`` doubled."""
    tree = tree.transform(lambda n: exp.var(_PARAM) if isinstance(n, exp.Placeholder) else n)
    return tree.sql("postgres").replace("%", "%%").replace(_PARAM, "%s")
