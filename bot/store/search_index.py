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
term through the GIN index, a very common one by walking the primary key from the newest
row; and ``enable_seqscan = off``, which a LIMIT otherwise makes look cheap.

Measured at 100k items (benchmarks/search_index.py): PostgreSQL is 1-9x faster than its LIKE
scan but tens of milliseconds for common words, because every row it tests detoasts a
tsvector of some kilobytes (the n-grams); SQLite's FTS5 answers the same queries in 2-5 ms.
A smaller tsvector for matching, or counting from the GIN bitmap alone, is the next step.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import JSON, Connection, Date, Integer, Text, column, func, select, table, text
from sqlalchemy.orm import Session

from bot.domain import Item, Link
from bot.search.tokens import Atom, Group, index_tokens
from bot.store.database import Database


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
    score: float  # relevance: query terms in the title (x10), plus terms in tags or section


@dataclass(frozen=True, slots=True)
class Ranked:
    hits: list[Hit]  # the requested page, best first
    total: int  # items that match, counted up to COUNT_LIMIT
    exact: bool  # False: more than COUNT_LIMIT match


# Matches are counted up to this many: counting walks every match (measured at 100k items:
# 3 ms for a word in half of them, 6 ms for two such words with their aliases, as much as
# everything else a search does), and "2000+" says all a reader needs.
COUNT_LIMIT = 2_000

# The newest ``cap`` matches come from the index; the database ranks them and returns only
# the page: the terms found in the title (tokens are space-separated, so a term's tokens
# are a substring of the column), then in tags or section; then the newer day, then the
# brief's own order. See bot.search for why not BM25.
_SQLITE_RANKED = """
WITH hits AS MATERIALIZED (
    SELECT rowid AS id FROM items_fts WHERE items_fts MATCH :q ORDER BY rowid DESC LIMIT :cap
), rows AS MATERIALIZED (
    -- bytes: instr() then compares bytes instead of decoding characters
    SELECT i.id, i.date, CAST(' ' || i.search_title || ' ' AS BLOB) AS title,
           CAST(' ' || i.search_tags || ' ' AS BLOB) AS tags
    FROM hits AS h JOIN items AS i ON i.id = h.id
)
SELECT i.id, {title} AS in_title, {tags} AS in_tags, (SELECT count(*) FROM hits) AS n
FROM rows AS i
ORDER BY in_title DESC, in_tags DESC, i.date DESC, i.id
LIMIT :limit OFFSET :offset
"""
_POSTGRES_RANKED = """
WITH hits AS MATERIALIZED (
    SELECT i.id, i.date, ' ' || i.search_title || ' ' AS title,
           ' ' || i.search_tags || ' ' AS tags
    FROM items AS i WHERE i.search_vector @@ ({tsquery}) ORDER BY i.id DESC LIMIT :cap
)
SELECT i.id, {title} AS in_title, {tags} AS in_tags, (SELECT count(*) FROM hits) AS n
FROM hits AS i
ORDER BY in_title DESC, in_tags DESC, i.date DESC, i.id
LIMIT :limit OFFSET :offset
"""


def _group_sql(group: Group, atom_sql: Callable[[Atom], str], *, and_: str, or_: str) -> str:
    """A query group as SQL: every atom of an alternative (``and_``), any alternative
    (``or_``); ``atom_sql`` writes one atom."""
    return (
        "("
        + f" {or_} ".join("(" + f" {and_} ".join(atom_sql(a) for a in alt) + ")" for alt in group)
        + ")"
    )


def _terms_in(
    column: str, groups: Sequence[Group], params: dict[str, object], *, dialect: str
) -> str:
    """SQL counting the groups that have an alternative whose every atom is in ``column``
    (the space-padded tokens of the title or the tags)."""
    find = "instr" if dialect == "sqlite" else "strpos"

    def atom_sql(atom: Atom) -> str:
        name = f"f{len(params)}"
        needle = " " + " ".join(atom.tokens) + " "
        params[name] = needle.encode() if dialect == "sqlite" else needle  # bytes: see above
        return f"{find}(i.{column}, :{name}) > 0"

    counted = [
        f"(CASE WHEN {_group_sql(g, atom_sql, and_='AND', or_='OR')} THEN 1 ELSE 0 END)"
        for g in groups
    ]
    return " + ".join(counted) or "0"


def fts5_expression(groups: Sequence[Group], *, require_all: bool) -> str:
    """An FTS5 MATCH expression: atoms quoted, alternatives ORed, groups ANDed (or ORed)."""

    def quoted(atom: Atom) -> str:
        return '"' + " ".join(t.replace('"', '""') for t in atom.tokens) + '"'

    parts = [_group_sql(g, quoted, and_="AND", or_="OR") for g in groups]
    return (" AND " if require_all else " OR ").join(parts)


def _pg_tsquery(groups: Sequence[Group], *, require_all: bool) -> tuple[str, dict[str, str]]:
    """A tsquery SQL expression over bound phrases, and its parameters."""
    params: dict[str, str] = {}

    def phrase(atom: Atom) -> str:
        name = f"p{len(params)}"
        params[name] = " ".join(atom.tokens)
        return f"phraseto_tsquery('simple', :{name})"

    parts = [_group_sql(g, phrase, and_="&&", or_="||") for g in groups]
    return (" && " if require_all else " || ").join(parts), params


class SearchIndex(Database):
    """Matching against the full-text index, and rebuilding it."""

    def search_items(
        self, groups: Sequence[Group], *, cap: int, limit: int, offset: int = 0
    ) -> tuple[Ranked, bool, dict[int, Item]]:
        """One read for a search: the ranked page of items matching every group, or, when
        none does, any group (then ``partial`` is True), with the page's items."""
        with self.session() as s:
            ranked = self._ranked(s, groups, True, cap, limit, offset)
            partial = False
            if not ranked.total and len(groups) > 1:
                ranked = self._ranked(s, groups, False, cap, limit, offset)
                partial = ranked.total > 0
            return ranked, partial, _items_by_id(s, [h.item_id for h in ranked.hits])

    def _ranked(
        self,
        s: Session,
        groups: Sequence[Group],
        require_all: bool,
        cap: int,
        limit: int,
        offset: int,
    ) -> Ranked:
        """Results ``offset`` to ``offset + limit`` among the newest ``cap`` items matching
        ``groups`` (all of them, or any), ranked in the database, and how many match."""
        params: dict[str, object]
        if self.dialect == "postgresql":
            tsquery, phrases = _pg_tsquery(groups, require_all=require_all)
            params = dict(phrases)
            s.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))
            # a LIMIT makes a sequential scan look cheap to the planner for a common word,
            # and it detoasts every row's tsvector: 33 ms to count 2000 of 36k matches
            s.execute(text("SET LOCAL enable_seqscan = off"))
            statement = _POSTGRES_RANKED.format(
                tsquery=tsquery,
                title=_terms_in("title", groups, params, dialect="postgresql"),
                tags=_terms_in("tags", groups, params, dialect="postgresql"),
            )
            counting = (
                "SELECT count(*) FROM (SELECT 1 FROM items "
                f"WHERE search_vector @@ ({tsquery}) LIMIT :most) AS m"
            )
        else:
            params = {"q": fts5_expression(groups, require_all=require_all)}
            statement = _SQLITE_RANKED.format(
                title=_terms_in("title", groups, params, dialect="sqlite"),
                tags=_terms_in("tags", groups, params, dialect="sqlite"),
            )
            counting = (
                "SELECT count(*) FROM (SELECT 1 FROM items_fts WHERE items_fts MATCH :q "
                "LIMIT :most)"
            )
        # the driver's own cursor: SQLAlchemy's text() costs more than the query here (its
        # statements differ with every query's shape, so nothing is cached)
        cursor = s.connection().connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute(
                _driver_sql(statement, self.dialect),
                {**params, "cap": cap, "limit": limit, "offset": offset},
            )
            rows = cursor.fetchall()
            within = rows[0][3] if rows else (0 if offset == 0 else cap)
            total = within
            if within >= cap:  # more match than were ranked: count them (up to a limit)
                cursor.execute(
                    _driver_sql(counting, self.dialect), {**params, "most": COUNT_LIMIT + 1}
                )
                total = cursor.fetchone()[0]
        finally:
            cursor.close()
        hits = [Hit(row[0], float(10 * row[1] + row[2])) for row in rows]
        return Ranked(hits, min(total, COUNT_LIMIT), total <= COUNT_LIMIT)

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
    column("position", Integer),
)


def _driver_sql(statement: str, dialect: str) -> str:
    """``:name`` placeholders in the driver's style (psycopg: ``%(name)s``)."""
    if dialect != "postgresql":
        return statement
    return re.sub(r"(?<![:\w]):(\w+)", r"%(\1)s", statement)


def _items_by_id(s: Session, ids: Sequence[int]) -> dict[int, Item]:
    """The items with these ids (the columns an Item needs, not the token columns)."""
    if not ids:
        return {}
    c = _SOURCE.c
    rows = s.execute(
        select(c.id, c.date, c.title, c.summary, c.links, c.tags, c.section, c.position).where(
            c.id.in_(list(ids))
        )
    )
    return {
        row.id: Item(
            date=row.date,
            title=row.title,
            summary=row.summary,
            links=tuple(Link(d["label"], d["url"]) for d in row.links or ()),
            tags=tuple(row.tags or ()),
            section=row.section,
            position=row.position,
        )
        for row in rows
    }


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
