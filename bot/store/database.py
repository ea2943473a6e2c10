"""Open a store's database (SQLite by default, PostgreSQL by URL) and keep its schema current."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Self

from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from bot.errors import StoreError

MIGRATIONS = Path(__file__).parent / "migrations"
# The newest migration in migrations/versions (a test keeps the two in step). A database at
# this revision is opened without loading Alembic, which keeps light commands fast.
HEAD_REVISION = "0005"


def aware(moment: dt.datetime) -> dt.datetime:
    # SQLite hands back naive datetimes for timezone=True columns; they were stored as UTC.
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def redact_url(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparsable database URL>"


class Database:
    """An engine and short transactions over it; the store's parts build on this."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    @classmethod
    def open(cls, url: str, *, migrate: bool = True) -> Self:
        """Open (creating a SQLite file's folder if needed) and migrate to the latest schema."""
        try:
            parsed = make_url(url)
        except ArgumentError as exc:
            raise StoreError(f"invalid database URL {redact_url(url)!r}: {exc}") from exc
        if parsed.drivername == "postgresql":
            # psycopg 3 is what the postgres extra installs; SQLAlchemy's default is psycopg2.
            parsed = parsed.set(drivername="postgresql+psycopg")
        if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
            Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        try:
            # a pre-ping finds a server connection that died; a SQLite file has none
            engine = create_engine(parsed, pool_pre_ping=parsed.get_backend_name() != "sqlite")
        except (ArgumentError, ImportError) as exc:
            raise StoreError(f"cannot use database {redact_url(url)}: {exc}") from exc
        if parsed.get_backend_name() == "sqlite":
            event.listen(engine, "connect", _sqlite_pragmas)
        store = cls(engine)
        if migrate:
            store.migrate()
        return store

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def revision(self) -> str | None:
        """The schema revision the database is at (None: new, or not briefbot's)."""
        try:
            with self.engine.connect() as connection:
                if not inspect(connection).has_table("alembic_version"):
                    return None
                return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
        except OperationalError as exc:
            raise StoreError(f"cannot open database {self._where()}: {exc.orig}") from exc
        except SQLAlchemyError:
            return None

    def migrate(self) -> None:
        if self.revision() == HEAD_REVISION:
            return
        from alembic import command
        from alembic.config import Config as AlembicConfig

        cfg = AlembicConfig()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        try:
            with self.engine.begin() as connection:
                cfg.attributes["connection"] = connection
                command.upgrade(cfg, "head")
        except OperationalError as exc:
            raise StoreError(f"cannot open database {self._where()}: {exc.orig}") from exc

    def _where(self) -> str:
        return redact_url(self.engine.url.render_as_string(hide_password=False))

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self._sessions() as session, session.begin():
            yield session


def _sqlite_pragmas(dbapi_connection: object, _record: object) -> None:
    # WAL lets the CLI read while the service writes; a busy timeout avoids spurious "locked".
    cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    # In WAL mode NORMAL still survives a crash of the process (what the ledger guards
    # against); only a power cut may lose the last commits. It halves the cost of a commit.
    cursor.execute("PRAGMA synchronous=NORMAL")
    # Reads (search above all) map the file instead of copying pages through a 2 MB cache:
    # at 100k items the index is ~100 MB, and copied pages made the slowest searches 5x slower.
    cursor.execute("PRAGMA mmap_size=1073741824")
    cursor.execute("PRAGMA cache_size=-32768")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
