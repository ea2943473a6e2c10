"""Keyword search over stored items: Chinese and English words, ranked, with snippets.

The pieces: :mod:`~bot.search.fold` (the one form text is compared in),
:mod:`~bot.search.tokens` (what the index stores, how a query is parsed),
:mod:`~bot.search.aliases` (芯片 ↔ chip), :mod:`~bot.search.snippet` (where it matched), and
the store's :mod:`~bot.store.search_index` (FTS5 on SQLite, tsvector + GIN on PostgreSQL).

Ranking (in the database, :mod:`~bot.store.search_index`): the query's terms found in the
title first, then in tags or section, then only in the summary and link labels; then the
newer day; within a day, the brief's own order. Why not BM25: measured at 100k items, FTS5's
``bm25()`` reads every match of each term (for its inverse document frequency) and looks up
each ranked row's length, 3-7 ms for a common word, most of the budget; in a news brief the
title is the item's subject and a passing mention in a summary is not, and among equals a
reader wants the newest. For a term in more than
:data:`CANDIDATES` items, the newest that many are ranked: people asking a news bot for
芯片 want this year's chip news, and this keeps every query within a few milliseconds.
All terms must match; when no item has them all, items with some of them are offered and
the page says so (``partial``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.domain import Item
from bot.search.snippet import Segments, highlight, snippet
from bot.search.tokens import AliasLookup, ParsedQuery, parse_query

if TYPE_CHECKING:
    from bot.store import Store

CANDIDATES = 300


@dataclass(frozen=True, slots=True)
class SearchResult:
    item: Item
    item_id: int
    score: float
    title: Segments  # the title with its hits marked
    snippet: Segments  # a short window of the summary around the first hit


@dataclass(frozen=True, slots=True)
class SearchPage:
    query: ParsedQuery
    results: list[SearchResult]
    total: int  # items that match
    offset: int = 0
    partial: bool = False  # nothing matched every term: these match some
    took_ms: float = 0.0
    total_exact: bool = True  # False: at least ``total`` match (counting stops there)

    @property
    def has_more(self) -> bool:
        return self.offset + len(self.results) < min(self.total, CANDIDATES)


def search_page(
    store: Store,
    query: str,
    *,
    limit: int = 5,
    offset: int = 0,
    max_length: int = 64,
    aliases: AliasLookup | None = None,
) -> SearchPage:
    """Results ``offset`` to ``offset + limit`` of ``query``, best first."""
    started = time.perf_counter()
    parsed = parse_query(query, max_length=max_length, aliases=aliases)
    if not parsed.groups or limit <= 0:
        return SearchPage(parsed, [], 0, offset, took_ms=_ms(started))
    ranked, partial, items = store.search_items(
        parsed.groups, cap=CANDIDATES, limit=limit, offset=offset
    )
    atoms = parsed.atoms
    results = [
        SearchResult(
            item=items[h.item_id],
            item_id=h.item_id,
            score=h.score,
            title=highlight(items[h.item_id].title, atoms),
            snippet=snippet(" ".join(items[h.item_id].paragraphs), atoms),
        )
        for h in ranked.hits
        if h.item_id in items  # deleted since the match: skip, never fail
    ]
    return SearchPage(
        parsed, results, ranked.total, offset, partial, _ms(started), total_exact=ranked.exact
    )


def search(
    store: Store,
    query: str,
    *,
    limit: int = 5,
    max_length: int = 64,
    aliases: AliasLookup | None = None,
) -> list[SearchResult]:
    """The best ``limit`` results of ``query``."""
    return search_page(store, query, limit=limit, max_length=max_length, aliases=aliases).results


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)
