"""Keyword search over stored items: Chinese and English words, case-insensitive, ranked."""

from __future__ import annotations

from dataclasses import dataclass

from bot.domain import Item
from bot.normalize import normalize
from bot.store import Store

# Matching rows are scored in Python; this many newest candidates are considered.
CANDIDATES = 1000
MAX_TERMS = 8


@dataclass(frozen=True, slots=True)
class SearchResult:
    item: Item
    score: float


def query_terms(query: str, *, max_length: int = 64) -> list[str]:
    """Split a user's query into normalised terms (whitespace-separated, deduplicated)."""
    terms: list[str] = []
    for term in normalize(query[: max_length * 4]).split(" "):
        if term and term not in terms:
            terms.append(term[:max_length])
    return terms[:MAX_TERMS]


def _score(item: Item, terms: list[str]) -> float:
    title = normalize(item.title)
    summary = normalize(item.summary)
    tags = [normalize(t) for t in item.tags]
    score = 0.0
    for term in terms:
        score += 3.0 * title.count(term)
        score += 2.0 * sum(term == t or term in t for t in tags)
        score += min(summary.count(term), 5)
    return score


def search_page(
    store: Store, query: str, *, limit: int = 5, max_length: int = 64
) -> tuple[list[SearchResult], int]:
    """The best ``limit`` items containing every term of ``query`` (newer first among
    equals), and how many items match in all (counted up to the candidate bound)."""
    terms = query_terms(query, max_length=max_length)
    if not terms or limit <= 0:
        return [], 0
    candidates = store.find_items(terms, candidates=CANDIDATES)
    results = [SearchResult(item, _score(item, terms)) for item, _text in candidates]
    results.sort(key=lambda r: (-r.score, -r.item.date.toordinal(), r.item.position))
    return results[:limit], len(results)


def search(store: Store, query: str, *, limit: int = 5, max_length: int = 64) -> list[SearchResult]:
    """Items containing every term of ``query``; best first, newer first among equals."""
    return search_page(store, query, limit=limit, max_length=max_length)[0]
