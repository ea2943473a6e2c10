"""Keyword search over stored items: Chinese and English words, ranked, with snippets.

The pieces: :mod:`~bot.search.fold` (the one form text is compared in),
:mod:`~bot.search.tokens` (what the index stores, how a query is parsed),
:mod:`~bot.search.aliases` (芯片 ↔ chip), :mod:`~bot.search.snippet` (where it matched), and
the store's :mod:`~bot.store.search_index` (FTS5 on SQLite, tsvector + GIN on PostgreSQL).

Ranking: items with a query word in the title first, then in tags or section; then relevance
(BM25 on SQLite, ts_rank on PostgreSQL; a title hit weighs most, then tags and section, then
summary and link labels) in bands (results within a quarter of the best relevance are
equals); then the newer day first. For a term in more than
:data:`CANDIDATES` items, the newest that many are ranked: people asking a news bot for
芯片 want this year's chip news, and this keeps every query within a few milliseconds.
All terms must match; when no item has them all, items with some of them are offered and
the page says so (``partial``).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.domain import Item
from bot.search.snippet import Segments, highlight, snippet
from bot.search.tokens import AliasLookup, ParsedQuery, parse_query

if TYPE_CHECKING:
    from bot.store import Store

CANDIDATES = 1000
# relevance bands: results whose relevance is within one band of each other are equals
BANDS = 4


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
    matches = store.match(parsed.groups, require_all=True, cap=CANDIDATES)
    partial = False
    if not matches.hits and len(parsed.groups) > 1:
        matches = store.match(parsed.groups, require_all=False, cap=CANDIDATES)
        partial = bool(matches.hits)
    best = max((h.score for h in matches.hits), default=0.0)

    def band(score: float) -> int:
        return math.ceil(score / best * BANDS) if best > 0 else 0

    ranked = sorted(
        matches.hits,
        key=lambda h: (-h.field, -band(h.score), -h.date.toordinal(), -h.score, h.item_id),
    )
    page = ranked[offset : offset + limit]
    items = store.items_by_id([h.item_id for h in page])
    atoms = parsed.atoms
    results = [
        SearchResult(
            item=items[h.item_id],
            item_id=h.item_id,
            score=h.score,
            title=highlight(items[h.item_id].title, atoms),
            snippet=snippet(" ".join(items[h.item_id].paragraphs), atoms),
        )
        for h in page
        if h.item_id in items  # deleted since the match: skip, never fail
    ]
    return SearchPage(parsed, results, matches.total, offset, partial, _ms(started))


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
