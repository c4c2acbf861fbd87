"""Makenaide's PostgreSQL schema: created idempotently in one transaction, then validated.

The schema is data (``SCHEMA``): creation and validation are both derived from it,
so they cannot disagree. Tables, columns, types and keys are those the trading app
queries. ``{"validate_only": true}`` reads the catalog and changes nothing.

This is the only function that changes the schema. The others run as roles that may
only read and write rows: ``FUNCTION_ROLES`` names, per function, the role and exactly
the table privileges its steps use; the same transaction creates each role (NOLOGIN:
a group role) when missing and sets its grants to exactly that. Give a function its
own login user in the role, and put that user's credentials in the function's secret:

    CREATE ROLE scanner_login LOGIN PASSWORD '...' IN ROLE makenaide_scanner;

PostgreSQL 14 and older let every role create tables in schema ``public``; there, also
run ``REVOKE CREATE ON SCHEMA public FROM PUBLIC`` (15 and later do not grant it).
"""

from __future__ import annotations

import logging

from .pipeline import Step

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (init time)
if TYPE_CHECKING:
    from typing import Any

    from .pipeline import RunContext

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 2
"""Bump when SCHEMA changes; each version is recorded once in schema_version.
2: scanner_state (the scanner no longer creates it at run time)."""
ADVISORY_LOCK_KEY = 0x4D414B454E  # "MAKEN": two initializers never change the schema at once
LOCK_TIMEOUT = "20s"
"""How long DDL waits for a table lock held by the trading app before the run fails (and rolls back)."""
SCHEMA_NAME = "public"
APPLY_BUDGET_MS = 60_000
VALIDATE_BUDGET_MS = 15_000
WORST_CASE_SECONDS = 90
"""Connect (5 s, twice), the DDL transaction (its lock and statement timeouts) and validation."""
SHOWN_CHARS = 60
"""A value from the event appears in an error as a repr of at most this length."""
MAX_FIELDS_SHOWN = 5
"""Unknown fields named in an error; the rest are counted."""


class InvalidEvent(ValueError):
    """The event cannot be processed; the caller gets a clear error result."""


def _shown(value: Any) -> str:
    """A short repr of a value from the event, for an error message (never the whole of a huge input)."""
    import reprlib

    shortener = reprlib.Repr()
    shortener.maxstring = shortener.maxother = SHOWN_CHARS
    return shortener.repr(value)


class SchemaInvalid(RuntimeError):
    """After applying it, the schema still differs from SCHEMA (e.g. a column of another type)."""


class Column:
    __slots__ = ("data_type", "ddl", "name")

    def __init__(self, name: str, ddl: str, data_type: str) -> None:
        self.name = name
        self.ddl = ddl
        """Type and column constraints as written in CREATE TABLE (a constant, never input)."""
        self.data_type = data_type
        """information_schema.columns.data_type of that type."""


class Table:
    __slots__ = ("columns", "name", "primary_key")

    def __init__(self, name: str, columns: tuple[Column, ...], primary_key: tuple[str, ...]) -> None:
        self.name = name
        self.columns = columns
        self.primary_key = primary_key


class Index:
    __slots__ = ("columns", "name", "table")

    def __init__(self, name: str, table: str, columns: tuple[str, ...]) -> None:
        self.name = name
        self.table = table
        self.columns = columns


def _real(*names: str) -> tuple[Column, ...]:
    return tuple(Column(name, "real", "real") for name in names)


_TEXT, _DATE, _TS, _INT = "text", "date", "timestamp without time zone", "integer"

SCHEMA: tuple[Table, ...] = (
    Table(
        "tickers",
        (
            Column("ticker", "varchar(20) NOT NULL", "character varying"),
            Column("created_at", "timestamp DEFAULT now()", _TS),
            Column("updated_at", "timestamp DEFAULT now()", _TS),
            Column("is_active", "boolean DEFAULT true", "boolean"),
        ),
        ("ticker",),
    ),
    Table(
        "ohlcv",
        (
            Column("ticker", "text NOT NULL", _TEXT),
            Column("date", "date NOT NULL", _DATE),
            *_real("open", "high", "low", "close", "volume"),
            *_real("ma_20", "ma_50", "ma_200", "rsi_14", "bb_upper", "bb_lower", "volume_20ma"),
        ),
        ("ticker", "date"),
    ),
    Table(
        "ohlcv_4h",
        (
            Column("ticker", "text NOT NULL", _TEXT),
            Column("date", "timestamp NOT NULL", _TS),
            *_real("open", "high", "low", "close", "volume"),
        ),
        ("ticker", "date"),
    ),
    Table(
        "static_indicators",
        (
            Column("ticker", "text NOT NULL", _TEXT),
            *_real("price", "atr", "adx", "volume_change_7_30"),
            Column("supertrend_signal", "text", _TEXT),
            *_real("high_60", "resistance", "support", "nvt_relative"),
            Column("updated_at", "timestamp DEFAULT now()", _TS),
        ),
        ("ticker",),
    ),
    Table(
        "trade_log",
        (
            Column("id", "serial", _INT),
            Column("ticker", "text NOT NULL", _TEXT),
            Column("action", "text NOT NULL", _TEXT),
            *_real("qty", "price"),
            Column("strategy_combo", "text", _TEXT),
            Column("executed_at", "timestamp DEFAULT now()", _TS),
        ),
        ("id",),
    ),
    Table(
        "performance_summary",
        (
            Column("id", "serial", _INT),
            Column("period_start", "date", _DATE),
            Column("period_end", "date", _DATE),
            *_real("initial_cash", "final_valuation", "cumulative_return"),
            Column("total_trades", "integer", _INT),
            Column("win_rate", "real", "real"),
            Column("created_at", "timestamp DEFAULT now()", _TS),
        ),
        ("id",),
    ),
    Table(
        "scanner_state",
        (
            Column("name", "text NOT NULL", _TEXT),
            Column("last_scan_at", "timestamptz NOT NULL", "timestamp with time zone"),
        ),
        ("name",),
    ),
    Table(
        "schema_version",
        (
            Column("version", "integer NOT NULL", _INT),
            Column("applied_at", "timestamptz NOT NULL DEFAULT now()", "timestamp with time zone"),
        ),
        ("version",),
    ),
)

INDEXES: tuple[Index, ...] = (
    Index("idx_ohlcv_date", "ohlcv", ("date",)),
    Index("idx_ohlcv_4h_date", "ohlcv_4h", ("date",)),
    Index("idx_trade_log_ticker_executed_at", "trade_log", ("ticker", "executed_at")),
    Index("idx_tickers_is_active", "tickers", ("is_active",)),
)


FUNCTION_ROLES: dict[str, dict[str, tuple[str, ...]]] = {
    # makenaide-scanner: reads the last scan, upserts tickers and records the scan.
    "makenaide_scanner": {
        "tickers": ("SELECT", "INSERT", "UPDATE"),
        "scanner_state": ("SELECT", "INSERT", "UPDATE"),
    },
    # makenaide-data-collector: reads active tickers and stored history, upserts candles,
    # deletes four-hour rows beyond its retention.
    "makenaide_data_collector": {
        "tickers": ("SELECT",),
        "ohlcv": ("SELECT", "INSERT", "UPDATE"),
        "ohlcv_4h": ("SELECT", "INSERT", "UPDATE", "DELETE"),
    },
}
"""Role per function -> table -> privileges: exactly what its steps run, nothing on other tables.
The orchestrator does not use the database; the trading app keeps its own user."""


class Request:
    __slots__ = ("validate_only",)

    def __init__(self, validate_only: bool) -> None:
        self.validate_only = validate_only


def parse_event(event: dict[str, Any]) -> Request:
    unknown = sorted((name for name in event if name != "validate_only"), key=str)
    if unknown:
        shown = ", ".join(_shown(name) for name in unknown[:MAX_FIELDS_SHOWN])
        if len(unknown) > MAX_FIELDS_SHOWN:
            shown += f" and {len(unknown) - MAX_FIELDS_SHOWN} more"
        raise InvalidEvent(f"unknown field(s) {shown}; only 'validate_only' is accepted")
    validate_only = event.get("validate_only", False)
    if not isinstance(validate_only, bool):
        raise InvalidEvent(f"'validate_only' must be true or false, not {_shown(validate_only)}")
    return Request(validate_only=validate_only)


# --- the catalog -------------------------------------------------------------------------------


def read_catalog(cursor: Any) -> dict[str, Any]:
    """What exists now: {"columns": {table: {column: data_type}}, "indexes": set, "primary_keys": {...}}."""
    names = [table.name for table in SCHEMA]
    cursor.execute(
        "SELECT table_name, column_name, data_type FROM information_schema.columns"
        " WHERE table_schema = %s AND table_name = ANY(%s)",
        (SCHEMA_NAME, names),
    )
    columns: dict[str, dict[str, str]] = {}
    for table, column, data_type in cursor.fetchall():
        columns.setdefault(table, {})[column] = data_type
    cursor.execute(
        "SELECT c.table_name, k.column_name FROM information_schema.table_constraints c"
        " JOIN information_schema.key_column_usage k"
        " ON k.constraint_schema = c.constraint_schema AND k.constraint_name = c.constraint_name"
        " AND k.table_name = c.table_name"
        " WHERE c.constraint_type = 'PRIMARY KEY' AND c.table_schema = %s AND c.table_name = ANY(%s)"
        " ORDER BY c.table_name, k.ordinal_position",
        (SCHEMA_NAME, names),
    )
    primary_keys: dict[str, list[str]] = {}
    for table, column in cursor.fetchall():
        primary_keys.setdefault(table, []).append(column)
    cursor.execute(
        "SELECT indexname FROM pg_indexes WHERE schemaname = %s AND indexname = ANY(%s)",
        (SCHEMA_NAME, [index.name for index in INDEXES]),
    )
    indexes = {row[0] for row in cursor.fetchall()}
    return {"columns": columns, "primary_keys": primary_keys, "indexes": indexes}


def compare(catalog: dict[str, Any]) -> dict[str, Any]:
    """The differences between the catalog and SCHEMA, as a JSON-serialisable report."""
    missing_tables: list[str] = []
    missing_columns: dict[str, list[str]] = {}
    wrong_types: dict[str, dict[str, str]] = {}
    wrong_keys: dict[str, list[str]] = {}
    for table in SCHEMA:
        existing = catalog["columns"].get(table.name)
        if existing is None:
            missing_tables.append(table.name)
            continue
        missing = [column.name for column in table.columns if column.name not in existing]
        if missing:
            missing_columns[table.name] = missing
        for column in table.columns:
            found = existing.get(column.name)
            if found is not None and found != column.data_type:
                wrong_types.setdefault(table.name, {})[column.name] = f"{found}, expected {column.data_type}"
        key = catalog["primary_keys"].get(table.name, [])
        if list(table.primary_key) != key:
            wrong_keys[table.name] = key
    missing_indexes = [index.name for index in INDEXES if index.name not in catalog["indexes"]]
    valid = not (missing_tables or missing_columns or wrong_types or wrong_keys or missing_indexes)
    return {
        "valid": valid,
        "missing_tables": missing_tables,
        "missing_columns": missing_columns,
        "wrong_types": wrong_types,
        "wrong_primary_keys": wrong_keys,
        "missing_indexes": missing_indexes,
    }


# --- DDL, composed from SCHEMA with psycopg2.sql (identifiers quoted, types are constants) ----------


def _create_table(table: Table) -> Any:
    from psycopg2 import sql

    parts = [
        sql.SQL("{} {}").format(sql.Identifier(column.name), sql.SQL(column.ddl)) for column in table.columns
    ]
    parts.append(
        sql.SQL("PRIMARY KEY ({})").format(sql.SQL(", ").join(map(sql.Identifier, table.primary_key)))
    )
    return sql.SQL("CREATE TABLE IF NOT EXISTS {}.{} ({})").format(
        sql.Identifier(SCHEMA_NAME), sql.Identifier(table.name), sql.SQL(", ").join(parts)
    )


def _add_column(table: Table, column: Column) -> Any:
    """ADD COLUMN for a table created before the column existed; NOT NULL is left out (old rows)."""
    from psycopg2 import sql

    ddl = column.ddl.replace(" NOT NULL", "")
    return sql.SQL("ALTER TABLE {}.{} ADD COLUMN IF NOT EXISTS {} {}").format(
        sql.Identifier(SCHEMA_NAME), sql.Identifier(table.name), sql.Identifier(column.name), sql.SQL(ddl)
    )


def _create_index(index: Index) -> Any:
    from psycopg2 import sql

    return sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {}.{} ({})").format(
        sql.Identifier(index.name),
        sql.Identifier(SCHEMA_NAME),
        sql.Identifier(index.table),
        sql.SQL(", ").join(map(sql.Identifier, index.columns)),
    )


def apply_schema_in(cursor: Any) -> dict[str, Any]:
    """Create what is missing, in the caller's transaction; returns what was created."""
    cursor.execute("SELECT pg_advisory_xact_lock(%s)", (ADVISORY_LOCK_KEY,))
    cursor.execute("SELECT set_config('lock_timeout', %s, true)", (LOCK_TIMEOUT,))
    catalog = read_catalog(cursor)
    created_tables: list[str] = []
    added_columns: list[str] = []
    for table in SCHEMA:
        existing = catalog["columns"].get(table.name)
        if existing is None:
            cursor.execute(_create_table(table))
            created_tables.append(table.name)
            continue
        for column in table.columns:
            if column.name not in existing:
                cursor.execute(_add_column(table, column))
                added_columns.append(f"{table.name}.{column.name}")
    created_indexes = []
    for index in INDEXES:
        if index.name not in catalog["indexes"]:
            cursor.execute(_create_index(index))
            created_indexes.append(index.name)
    cursor.execute(
        "INSERT INTO schema_version (version) VALUES (%s) ON CONFLICT (version) DO NOTHING RETURNING version",
        (SCHEMA_VERSION,),
    )
    version_recorded = cursor.fetchone() is not None
    created_roles = apply_roles_in(cursor)
    return {
        "created_tables": created_tables,
        "added_columns": added_columns,
        "created_indexes": created_indexes,
        "schema_version": SCHEMA_VERSION,
        "version_recorded": version_recorded,
        "created_roles": created_roles,
    }


def apply_roles_in(cursor: Any) -> list[str]:
    """Create missing function roles; set each one's grants on SCHEMA's tables to FUNCTION_ROLES exactly.

    Roles belong to the whole server, not to one database: one already there is reused, also one
    that an initializer of another database on the same server creates at the same moment.
    """
    from psycopg2 import errors, sql

    cursor.execute("SELECT rolname FROM pg_roles WHERE rolname = ANY(%s)", (list(FUNCTION_ROLES),))
    existing = {row[0] for row in cursor.fetchall()}
    created = []
    for role, grants in FUNCTION_ROLES.items():
        if role not in existing:
            cursor.execute("SAVEPOINT create_role")
            try:
                cursor.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(role)))
            except (errors.DuplicateObject, errors.UniqueViolation):
                cursor.execute("ROLLBACK TO SAVEPOINT create_role")  # created meanwhile elsewhere
            else:
                created.append(role)
            cursor.execute("RELEASE SAVEPOINT create_role")
        for table in SCHEMA:
            target = sql.SQL("{}.{}").format(sql.Identifier(SCHEMA_NAME), sql.Identifier(table.name))
            cursor.execute(sql.SQL("REVOKE ALL ON {} FROM {}").format(target, sql.Identifier(role)))
            privileges = grants.get(table.name)
            if privileges:
                cursor.execute(
                    sql.SQL("GRANT {} ON {} TO {}").format(
                        sql.SQL(", ").join(sql.SQL(privilege) for privilege in privileges),
                        target,
                        sql.Identifier(role),
                    )
                )
    return created


# --- steps ---------------------------------------------------------------------------------------


def apply_schema(run: RunContext) -> dict[str, Any]:
    """Everything in one transaction: a failure part-way leaves the database as it was."""
    from .db import get_database

    if run.request.validate_only:
        from .pipeline import SkipStep

        raise SkipStep("validate_only: nothing is changed")
    changes = get_database(run.clients).run_transaction(apply_schema_in)
    run.metrics.add("TablesCreated", len(changes["created_tables"]))
    run.metrics.add("ColumnsAdded", len(changes["added_columns"]))
    run.metrics.add("IndexesCreated", len(changes["created_indexes"]))
    run.metrics.add("RolesCreated", len(changes["created_roles"]))
    logger.info("schema applied", extra={"changes": changes})
    return changes


def validate_schema(run: RunContext) -> dict[str, Any]:
    from .db import get_database

    def read(cursor: Any) -> dict[str, Any]:
        cursor.execute("SET TRANSACTION READ ONLY")
        report = compare(read_catalog(cursor))
        version = None
        if "schema_version" not in report["missing_tables"]:
            cursor.execute("SELECT max(version) FROM schema_version")
            version = cursor.fetchone()[0]
        report["schema_version"] = version
        return report

    report = get_database(run.clients).run_transaction(read)
    run.metrics.add("SchemaValid", 1 if report["valid"] else 0)
    run.metrics.add("MissingTables", len(report["missing_tables"]))
    run.metrics.add("MissingColumns", sum(len(names) for names in report["missing_columns"].values()))
    if not report["valid"]:
        logger.warning("schema differs from the expected one", extra={"report": report})
        if not run.request.validate_only:
            raise SchemaInvalid(_summary(report))
    return report


def _summary(report: dict[str, Any]) -> str:
    parts = []
    if report["missing_tables"]:
        parts.append("missing tables " + ", ".join(report["missing_tables"]))
    for table, columns in report["missing_columns"].items():
        parts.append(f"{table} lacks " + ", ".join(columns))
    for table, columns in report["wrong_types"].items():
        parts += [f"{table}.{name} is {problem}" for name, problem in columns.items()]
    for table, key in report["wrong_primary_keys"].items():
        parts.append(f"{table} primary key is ({', '.join(key)})")
    if report["missing_indexes"]:
        parts.append("missing indexes " + ", ".join(report["missing_indexes"]))
    return "; ".join(parts)


def build_steps(request: Request) -> list[Step]:
    return [
        Step("apply_schema", apply_schema, budget_ms=APPLY_BUDGET_MS),
        Step("validate_schema", validate_schema, budget_ms=VALIDATE_BUDGET_MS),
    ]
