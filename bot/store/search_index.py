"""The full-text index over items, on SQLite (FTS5) and PostgreSQL (tsvector + GIN).

Both index the token columns ``items.search_title``, ``search_tags`` and ``search_body``
that :func:`index_columns` writes with every item (see :mod:`bot.search.tokens` for what a
token is). The index follows the rows by itself, whatever changes them (ingest, update,
re-ingest pruning, delete): on SQLite an external-content FTS5 table kept by triggers, on
PostgreSQL a generated ``tsvector`` column with a GIN index. Migration 0004 builds both.

Queries never carry user text as syntax: the FTS5 expression is rebuilt from tokens that
are word characters only, each double-quoted; on PostgreSQL each phrase is a bound parameter
of ``phraseto_tsquery``, which reads it as plain words.

PostgreSQL plans: psycopg prepares a statement after five executions and PostgreSQL may then
use one generic plan for every parameter value, the trap that made a ``pg_trgm`` index
slower than a scan for common and two-character terms. The search transaction sets
``plan_cache_mode = force_custom_plan``, so each query is planned for its own terms: a rare
term through the GIN index, a very common one by walking the newest rows.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import JSON, Connection, Date, Integer, Text, column, func, select, table, text
from sqlalchemy.orm import Session

from bot.domain import Item, Link
from bot.search.tokens import Group, index_tokens
from bot.store.database import Database
from bot.store.models import ItemRow

# Column weights: a hit in the title counts most, then tags and section, then the rest.
TITLE_WEIGHT, TAGS_WEIGHT, BODY_WEIGHT = 4.0, 3.0, 1.0
# PostgreSQL's ts_rank weights, in its order {D, C, B, A}: body D, tags B, title A
_PG_WEIGHTS = "{0.25, 0.25, 0.75, 1.0}"


def index_columns(item: Item) -> dict[str, str]:
    """The token columns of an item's row."""
    return {
        "search_title": index_tokens(item.title),
        "search_tags": index_tokens(" ".join([*item.tags, item.section or ""])),
        "search_body": index_tokens(" ".join([item.summary, *(link.label for link in item.links)])),
    }


@dataclass(frozen=True, slots=True)
class Hit:
    item_id: int
    score: float  # relevance, higher is better
    date: dt.date
    # where a word of the query is: 2 the title, 1 tags or section, 0 only the rest
    field: int


@dataclass(frozen=True, slots=True)
class Matches:
    hits: list[Hit]  # the newest ``cap`` matches, newest first
    total: int  # every match


def fts5_expression(groups: Sequence[Group], *, require_all: bool) -> str:
    """An FTS5 MATCH expression: atoms quoted, alternatives ORed, groups ANDed (or ORed)."""

    def quoted(tokens: Sequence[str]) -> str:
        return '"' + " ".join(t.replace('"', '""') for t in tokens) + '"'

    parts = []
    for group in groups:
        alternatives = [" AND ".join(quoted(a.tokens) for a in alt) for alt in group]
        parts.append("(" + " OR ".join(f"({a})" for a in alternatives) + ")")
    return (" AND " if require_all else " OR ").join(parts)


def _pg_tsquery(groups: Sequence[Group], *, require_all: bool) -> tuple[str, dict[str, str]]:
    """A tsquery SQL expression over bound phrases, and its parameters."""
    params: dict[str, str] = {}
    parts = []
    for group in groups:
        alternatives = []
        for alt in group:
            atoms = []
            for atom in alt:
                name = f"p{len(params)}"
                params[name] = " ".join(atom.tokens)
                atoms.append(f"phraseto_tsquery('simple', :{name})")
            alternatives.append("(" + " && ".join(atoms) + ")")
        parts.append("(" + " || ".join(alternatives) + ")")
    return (" && " if require_all else " || ").join(parts), params


class SearchIndex(Database):
    """Matching against the full-text index, and rebuilding it."""

    def match(self, groups: Sequence[Group], *, require_all: bool = True, cap: int) -> Matches:
        """The newest ``cap`` items matching ``groups`` with their relevance, and how many
        match in all."""
        if not groups:
            return Matches([], 0)
        with self.session() as s:
            if self.dialect == "postgresql":
                return self._match_postgres(s, groups, require_all, cap)
            return self._match_sqlite(s, groups, require_all, cap)

    @staticmethod
    def _match_sqlite(s: Session, groups: Sequence[Group], require_all: bool, cap: int) -> Matches:
        expression = fts5_expression(groups, require_all=require_all)
        rows = s.execute(
            text(
                # bm25 with other columns weighing nothing is non-zero only for a hit in
                # that column: where the words are, at the cost of scoring twice more
                "SELECT items_fts.rowid, bm25(items_fts, :wt, :wg, :wb), items.date, "
                "bm25(items_fts, 1.0, 0.0, 0.0), bm25(items_fts, 0.0, 1.0, 0.0) "
                "FROM items_fts JOIN items ON items.id = items_fts.rowid "
                "WHERE items_fts MATCH :q ORDER BY items_fts.rowid DESC LIMIT :cap"
            ),
            {"q": expression, "cap": cap, "wt": TITLE_WEIGHT, "wg": TAGS_WEIGHT, "wb": BODY_WEIGHT},
        ).all()
        # bm25() is lower-is-better in FTS5
        hits = [Hit(row[0], -float(row[1]), _date(row[2]), _field(row[3], row[4])) for row in rows]
        total = len(hits)
        if total >= cap:
            total = s.execute(
                text("SELECT count(*) FROM items_fts WHERE items_fts MATCH :q"), {"q": expression}
            ).scalar_one()
        return Matches(hits, total)

    @staticmethod
    def _match_postgres(
        s: Session, groups: Sequence[Group], require_all: bool, cap: int
    ) -> Matches:
        tsquery, params = _pg_tsquery(groups, require_all=require_all)
        s.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))
        rows = s.execute(
            text(
                f"SELECT i.id, ts_rank('{_PG_WEIGHTS}', i.search_vector, q.q), i.date, "
                "ts_rank('{0, 0, 0, 1}', i.search_vector, q.q), "
                "ts_rank('{0, 0, 1, 0}', i.search_vector, q.q) "
                f"FROM items AS i, (SELECT {tsquery} AS q) AS q "
                "WHERE i.search_vector @@ q.q ORDER BY i.id DESC LIMIT :cap"
            ),
            {**params, "cap": cap},
        ).all()
        hits = [Hit(row[0], float(row[1]), _date(row[2]), _field(row[3], row[4])) for row in rows]
        total = len(hits)
        if total >= cap:
            total = s.execute(
                text(f"SELECT count(*) FROM items WHERE search_vector @@ ({tsquery})"), params
            ).scalar_one()
        return Matches(hits, total)

    def items_by_id(self, ids: Sequence[int]) -> dict[int, Item]:
        from bot.store.content import item_of_row

        if not ids:
            return {}
        with self.session() as s:
            rows = s.scalars(select(ItemRow).where(ItemRow.id.in_(list(ids))))
            return {row.id: item_of_row(row) for row in rows}

    def reindex(self, *, progress: Callable[[int, int], None] | None = None) -> int:
        """Recompute every item's tokens and rebuild the index; returns the number of items.

        Needed after the tokenizer changes (aliases need nothing: they apply to queries)."""
        with self.engine.begin() as connection:
            done = backfill_tokens(connection, progress=progress)
            if self.dialect == "sqlite":
                connection.execute(text("INSERT INTO items_fts(items_fts) VALUES ('rebuild')"))
        return done


# the columns tokens are made from, read without the ORM (the migration uses this too)
_SOURCE = table(
    "items",
    column("id", Integer),
    column("date", Date),
    column("title", Text),
    column("summary", Text),
    column("links", JSON),
    column("tags", JSON),
    column("section", Text),
)


def backfill_tokens(
    connection: Connection, *, progress: Callable[[int, int], None] | None = None, batch: int = 1000
) -> int:
    """Write the token columns of every item, ``batch`` rows at a time."""
    total = connection.execute(select(func.count()).select_from(_SOURCE)).scalar_one()
    done = last = 0
    c = _SOURCE.c
    while True:
        rows = connection.execute(
            select(c.id, c.date, c.title, c.summary, c.links, c.tags, c.section)
            .where(c.id > last)
            .order_by(c.id)
            .limit(batch)
        ).all()
        if not rows:
            return done
        updates: list[dict[str, Any]] = []
        for row in rows:
            item = Item(
                date=row.date,
                title=row.title,
                summary=row.summary,
                links=tuple(Link(d["label"], d["url"]) for d in row.links or ()),
                tags=tuple(row.tags or ()),
                section=row.section,
            )
            updates.append({"row_id": row.id, **index_columns(item)})
        connection.execute(
            text(
                "UPDATE items SET search_title = :search_title, search_tags = :search_tags, "
                "search_body = :search_body WHERE id = :row_id"
            ),
            updates,
        )
        last = rows[-1].id
        done += len(rows)
        if progress is not None:
            progress(done, total)


def _field(title_score: float, tags_score: float) -> int:
    return 2 if title_score else 1 if tags_score else 0


def _date(value: object) -> dt.date:
    # SQLite hands back ISO text from a raw SELECT
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))
