"""What readers search for: each folded query counted per day, with how often it found
nothing. No user or chat id is kept, only the words."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import cast

from sqlalchemy import Table, func, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from bot.store.database import Database
from bot.store.models import SearchQueryRow

MAX_QUERY = 200


@dataclass(frozen=True, slots=True)
class QueryCount:
    query: str
    asked: int
    no_hits: int  # how many of those found nothing


class QueryStats(Database):
    def count_query(self, query: str, *, found: bool, day: dt.date) -> None:
        """Count one search for ``query`` (already folded) on ``day``."""
        query = query[:MAX_QUERY]
        if not query:
            return
        insert = postgresql_insert if self.dialect == "postgresql" else sqlite_insert
        table = cast(Table, SearchQueryRow.__table__)
        missed = 0 if found else 1
        statement = insert(table).values(day=day, query=query, asked=1, no_hits=missed)
        with self.engine.begin() as connection:
            connection.execute(
                statement.on_conflict_do_update(
                    index_elements=["day", "query"],
                    set_={"asked": table.c.asked + 1, "no_hits": table.c.no_hits + missed},
                )
            )

    def query_counts(self, *, since: dt.date, limit: int = 20) -> list[QueryCount]:
        """The most asked queries since ``since``, most asked first."""
        return self._counts(since, limit, no_hits_only=False)

    def unanswered_queries(self, *, since: dt.date, limit: int = 20) -> list[QueryCount]:
        """Queries that found nothing at least once since ``since``, most missed first."""
        return self._counts(since, limit, no_hits_only=True)

    def _counts(self, since: dt.date, limit: int, *, no_hits_only: bool) -> list[QueryCount]:
        asked = func.sum(SearchQueryRow.asked)
        missed = func.sum(SearchQueryRow.no_hits)
        query = (
            select(SearchQueryRow.query, asked, missed)
            .where(SearchQueryRow.day >= since)
            .group_by(SearchQueryRow.query)
        )
        if no_hits_only:
            query = query.having(missed > 0).order_by(missed.desc(), SearchQueryRow.query)
        else:
            query = query.order_by(asked.desc(), SearchQueryRow.query)
        with self.session() as s:
            return [
                QueryCount(row[0], int(row[1]), int(row[2]))
                for row in s.execute(query.limit(limit))
            ]
