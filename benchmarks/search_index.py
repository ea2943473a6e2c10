"""Benchmark: keyword search over 100,000 items, against a LIKE scan of the same rows.

The corpus (benchmarks/corpus.py: seeded, ~85% Chinese, ~90 items a day over three years)
goes in through the store's own ingest path, ``Store.upsert_items``, one call per day; the
build time and the database's size are printed. Then each query class (1-, 2-, 3- and
4-character Chinese words, an English word, two terms, a rare word, a word in no item, a
very common word) is run through the public search API,
``bot.search.search_page(store, query, limit=5)``, and through a baseline in the same run:
a bound-parameter ``LIKE '%term%'`` scan over the items' normalised text, newest first,
``LIMIT 1000``, rows fetched. A class rotates through several queries of its kind; each
query is run once to warm up before the timed runs.

    python benchmarks/search_index.py                      # SQLite in a temporary folder
    python benchmarks/search_index.py --items 5000         # a quick look
    python benchmarks/search_index.py --postgres --keep    # PostgreSQL (briefbench), reused

It prints p50 and p99 in ms per class for both, and LIKE / index ratios (above 1: the index
is faster). Without ``--keep`` the database is emptied and built again; ``--keep`` reuses
one that already holds ``--items`` items (build it again after a change to ingest or schema).
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import math
import os
import platform
import sqlite3
import statistics
import sys
import tempfile
import time
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

# run as a script (python benchmarks/search_index.py), the repository root is not on the path
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import sqlalchemy
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection, make_url

from benchmarks.corpus import (
    COMMON_TERMS,
    NO_HIT_WORDS,
    RARE_WORDS,
    SEED,
    CorpusStats,
    day_count,
    generate_days,
)
from bot.domain import Item, Link
from bot.search import search_page
from bot.search.aliases import Aliases
from bot.store import Store

POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/briefbench"
# the test suite drops every table of "test"; the others are the server's own
FORBIDDEN_DATABASES = {"test", "postgres", "template0", "template1"}
LIMIT = 5
BASELINE_ROWS = 1000


@dataclass(frozen=True)
class QueryClass:
    name: str
    queries: tuple[str, ...]


QUERY_CLASSES = (
    QueryClass("1-char", ("芯", "车", "图", "算")),
    QueryClass("2-char", ("芯片", "开源", "推理", "训练", "算力")),
    QueryClass("3-char", ("地平线", "大模型", "智能体", "机器人")),
    QueryClass("4-char", ("强化学习", "扩散模型", "自动驾驶", "具身智能")),
    QueryClass("english", ("Transformer", "diffusion", "agent", "chip")),
    QueryClass("two-term", ("芯片 开源", "大模型 推理", "机器人 强化学习", "agent 开源")),
    QueryClass("rare", RARE_WORDS),
    QueryClass("no-hit", NO_HIT_WORDS),
    QueryClass("common", COMMON_TERMS),
)


# --- the database ----------------------------------------------------------------------------


def database_name(url: str) -> str:
    return make_url(url).database or ""


def shown(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def is_postgres(url: str) -> bool:
    return make_url(url).get_backend_name() == "postgresql"


def refuse_forbidden(url: str) -> None:
    if is_postgres(url) and database_name(url) in FORBIDDEN_DATABASES:
        sys.exit(
            f"refusing database {database_name(url)!r}: the benchmark empties the database it "
            f"builds in; use {POSTGRES_URL}"
        )


@contextmanager
def postgres_admin(url: str) -> Iterator[Any]:
    """An autocommit psycopg connection to the server's ``postgres`` database."""
    import psycopg

    parsed = make_url(url)
    with psycopg.connect(
        host=parsed.host or "127.0.0.1",
        port=parsed.port or 5432,
        user=parsed.username or "postgres",
        password=parsed.password,
        dbname="postgres",
        autocommit=True,
    ) as connection:
        yield connection


def create_postgres_database(url: str, *, drop_first: bool = False) -> None:
    """Create the benchmark's database if it is missing (dropping it first if asked)."""
    from psycopg import sql

    name = database_name(url)
    with postgres_admin(url) as admin:
        if drop_first:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def sqlite_path(url: str) -> Path | None:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database).expanduser()


def holds_other_data(store: Store) -> bool:
    """Rows the benchmark never writes: then this is somebody's real database."""
    names = set(inspect(store.engine).get_table_names())
    with store.engine.connect() as connection:
        for table in ("subscribers", "deliveries"):
            if (
                table in names
                and connection.execute(text(f"SELECT count(*) FROM {table}")).scalar()
            ):
                return True
    return False


def empty_database(url: str, store: Store) -> Store:
    """Throw away what ``url`` holds and open it again, empty and migrated."""
    if holds_other_data(store):
        store.close()
        sys.exit(f"refusing to empty {shown(url)}: it has subscribers or deliveries")
    store.close()
    if is_postgres(url):
        create_postgres_database(url, drop_first=True)
    else:
        path = sqlite_path(url)
        if path is None:
            sys.exit(f"cannot empty {shown(url)}: give a SQLite file or a PostgreSQL database")
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
    return Store.open(url)


# --- ingest ----------------------------------------------------------------------------------


@dataclass
class Build:
    items: int
    reused: bool = False
    calls: int = 0
    seconds: float = 0.0  # inside Store.upsert_items only
    generate_seconds: float = 0.0
    analyze_seconds: float | None = None
    corpus: CorpusStats = field(default_factory=CorpusStats)
    # each item's title, summary and tags as search compares them: to count true matches
    texts: list[str] = field(default_factory=list)


def searchable(item: Item) -> str:
    return normalise(" ".join([item.title, item.summary, *item.tags]))


def reuse(store: Store, items: int, seed: int) -> Build | None:
    """The corpus again, without ingest, if ``store`` holds it (--keep); else None."""
    if store.count_items() != items:
        return None
    build = Build(items=items, reused=True)
    last: list[Item] = []
    for batch in generate_days(items, seed=seed, stats=build.corpus):
        build.texts.extend(searchable(item) for item in batch)
        last = batch
    # the same count from another seed or an older generator is another corpus
    return build if store.items_on(last[0].date) == last else None


def ingest(store: Store, items: int, seed: int) -> Build:
    """The corpus through ``Store.upsert_items``, one call per day, progress on stderr."""
    build = Build(items=items)
    days = day_count(items)
    started = time.perf_counter()
    done, next_report = 0, 0.0
    for batch in generate_days(items, seed=seed, stats=build.corpus):
        build.texts.extend(searchable(item) for item in batch)
        generated = time.perf_counter()
        store.upsert_items(batch, source=f"benchmark/{batch[0].date.isoformat()}.md")
        build.seconds += time.perf_counter() - generated
        build.calls += 1
        done += len(batch)
        if done / items >= next_report or build.calls == days:
            elapsed = time.perf_counter() - started
            print(
                f"  ingest: {done:,}/{items:,} items ({done / items:.0%}), {elapsed:.1f} s",
                file=sys.stderr,
                flush=True,
            )
            next_report += 0.05
    build.generate_seconds = time.perf_counter() - started - build.seconds
    if store.dialect == "postgresql":
        # autovacuum would analyse the fresh table within a minute; do it now so plans are
        # the steady state's, and report it apart from the build
        started = time.perf_counter()
        with store.engine.connect() as connection:
            connection.execution_options(isolation_level="AUTOCOMMIT").execute(text("ANALYZE"))
        build.analyze_seconds = time.perf_counter() - started
    return build


def database_size(store: Store) -> dict[str, int]:
    """SQLite: the file (after a WAL checkpoint) and its WAL; PostgreSQL: database and tables."""
    with store.engine.connect() as connection:
        if store.dialect == "sqlite":
            connection.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
            path = sqlite_path(str(store.engine.url))
            sizes = {"file": 0, "wal": 0}
            if path is not None:
                sizes["file"] = path.stat().st_size
                wal = Path(f"{path}-wal")
                sizes["wal"] = wal.stat().st_size if wal.exists() else 0
            return sizes
        row = connection.execute(
            text(
                "SELECT pg_database_size(current_database()), pg_total_relation_size('items'),"
                " pg_relation_size('items'), pg_indexes_size('items'),"
                " (SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c"
                "  JOIN pg_namespace n ON n.oid = c.relnamespace"
                "  WHERE c.relkind IN ('r', 'm') AND n.nspname = current_schema())"
            )
        ).one()
        return {
            "database": int(row[0]),
            "items_total": int(row[1]),
            "items_heap": int(row[2]),
            "items_indexes": int(row[3]),
            "all_tables": int(row[4]),
        }


# --- measuring -------------------------------------------------------------------------------


def normalise(text: str) -> str:
    """NFKC and case-folded, the form the stored search text has."""
    return unicodedata.normalize("NFKC", text).casefold()


def normalise_terms(query: str) -> list[str]:
    return normalise(query).split()


def containing(texts: Sequence[str], query: str) -> int:
    """Items whose title, summary or tags hold every term of ``query`` (not timed)."""
    terms = normalise_terms(query)
    return sum(1 for t in texts if all(term in t for term in terms))


class Baseline:
    """A LIKE substring scan over the normalised text, newest first, rows fetched."""

    def __init__(self, store: Store) -> None:
        columns = {c["name"] for c in inspect(store.engine).get_columns("items")}
        self.expression = (
            "search_text" if "search_text" in columns else "lower(title || ' ' || summary)"
        )

    def where(self, terms: int) -> str:
        return " AND ".join(f"{self.expression} LIKE :p{i} ESCAPE '\\'" for i in range(terms))

    def select(self, terms: int) -> str:
        return (
            f"SELECT id, date, title, summary, links, tags FROM items WHERE {self.where(terms)}"
            f" ORDER BY date DESC LIMIT {BASELINE_ROWS}"
        )

    @staticmethod
    def parameters(query: str) -> dict[str, str]:
        return {
            f"p{i}": "%" + t.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            for i, t in enumerate(normalise_terms(query))
        }

    def run(self, connection: Connection, query: str) -> int:
        parameters = self.parameters(query)
        return len(connection.execute(text(self.select(len(parameters))), parameters).all())


class FirstWave(Baseline):
    """The search this index replaced (the first wave's): the same LIKE scan, then the
    rows loaded as items and scored in Python, re-normalising every candidate's text."""

    def run(self, connection: Connection, query: str) -> int:
        parameters = self.parameters(query)
        terms = normalise_terms(query)
        rows = connection.execute(
            text(
                self.select(len(parameters)).replace("SELECT id,", "SELECT id, position, section,")
            ),
            parameters,
        ).all()
        scored = []
        for row in rows:
            item = Item(
                date=row.date if isinstance(row.date, dt.date) else dt.date.fromisoformat(row.date),
                title=row.title,
                summary=row.summary,
                links=tuple(Link(d["label"], d["url"]) for d in _json(row.links)),
                tags=tuple(_json(row.tags)),
                section=row.section,
                position=row.position,
            )
            title, summary = normalise(item.title), normalise(item.summary)
            tags = [normalise(t) for t in item.tags]
            score = sum(
                3.0 * title.count(t) + 2.0 * sum(t in g for g in tags) + min(summary.count(t), 5)
                for t in terms
            )
            scored.append((-score, -item.date.toordinal(), item.position))
        scored.sort()
        return len(scored)


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


# the built-in alias table, as `briefbot search` and the chat use it (芯片 also asks for chip,
# chips and 晶片): what a reader's query costs
ALIASES = Aliases.from_settings(())


def measure(
    call: Callable[[str], int], queries: Sequence[str], runs: int
) -> tuple[list[float], dict[str, int]]:
    """One warm-up call per query (its count kept), then ``runs`` timed calls in rotation."""
    counts = {query: call(query) for query in queries}
    samples = []
    for i in range(runs):
        query = queries[i % len(queries)]
        started = time.perf_counter()
        call(query)
        samples.append((time.perf_counter() - started) * 1000)
    return samples, counts


def p50(samples: Sequence[float]) -> float:
    return statistics.median(samples)


def p99(samples: Sequence[float]) -> float:
    """Nearest rank: with fewer than 100 samples, the slowest."""
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(0.99 * len(ordered)) - 1)]


def page_total(page: Any) -> int:
    """How many items matched: a page with ``total``, or a ``(results, total)`` pair."""
    total = getattr(page, "total", None)
    return int(page[1] if total is None else total)


def run_class(
    store: Store,
    baseline: Baseline,
    cls: QueryClass,
    runs: int,
    baseline_runs: int,
    texts: Sequence[str],
) -> dict[str, Any]:
    def index_call(query: str) -> int:
        return page_total(search_page(store, query, limit=LIMIT, aliases=ALIASES))

    first_wave = FirstWave(store)

    index_ms, totals = measure(index_call, cls.queries, runs)
    with store.engine.connect() as connection:
        baseline_ms, rows = measure(
            lambda q: baseline.run(connection, q), cls.queries, baseline_runs
        )
        first_ms, _ = measure(lambda q: first_wave.run(connection, q), cls.queries, baseline_runs)
    index = {"p50_ms": p50(index_ms), "p99_ms": p99(index_ms)}
    like = {"p50_ms": p50(baseline_ms), "p99_ms": p99(baseline_ms)}
    first = {"p50_ms": p50(first_ms), "p99_ms": p99(first_ms)}
    return {
        "class": cls.name,
        "queries": [
            {
                "query": q,
                "search_page_total": totals[q],
                "baseline_rows": rows[q],
                "items_containing": containing(texts, q),
            }
            for q in cls.queries
        ],
        "index": index,
        "baseline": like,
        "first_wave": first,
        "ratio": {
            "p50": like["p50_ms"] / index["p50_ms"],
            "p99": like["p99_ms"] / index["p99_ms"],
        },
    }


def median_of_rounds(rounds: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One class's figures: the median over the rounds of each p50 and p99."""
    merged = dict(rounds[0])
    for side in ("index", "baseline", "first_wave"):
        merged[side] = {
            key: statistics.median(r[side][key] for r in rounds) for key in ("p50_ms", "p99_ms")
        }
        merged[side]["rounds_p99_ms"] = [r[side]["p99_ms"] for r in rounds]
    merged["ratio"] = {
        q: merged["baseline"][f"{q}_ms"] / merged["index"][f"{q}_ms"] for q in ("p50", "p99")
    }
    merged["first_wave_ratio"] = {
        q: merged["first_wave"][f"{q}_ms"] / merged["index"][f"{q}_ms"] for q in ("p50", "p99")
    }
    return merged


# --- the run ---------------------------------------------------------------------------------


def mib(size: int) -> str:
    return f"{size / 2**20:,.1f} MiB"


def describe_size(sizes: dict[str, int]) -> str:
    if "file" in sizes:
        wal = f" + WAL {mib(sizes['wal'])}" if sizes["wal"] else ""
        return f"{mib(sizes['file'])} (the SQLite file after a WAL checkpoint{wal})"
    return (
        f"{mib(sizes['database'])} (pg_database_size); items table with its indexes and TOAST "
        f"{mib(sizes['items_total'])} (heap {mib(sizes['items_heap'])}, indexes "
        f"{mib(sizes['items_indexes'])}); all tables {mib(sizes['all_tables'])}"
    )


def versions(store: Store) -> dict[str, Any]:
    info: dict[str, Any] = {
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "sqlalchemy": sqlalchemy.__version__,
    }
    if store.dialect == "postgresql":
        import psycopg

        with store.engine.connect() as connection:
            info["postgresql"] = connection.execute(text("SHOW server_version")).scalar()
            driver = connection.connection.driver_connection
            info["prepare_threshold"] = getattr(driver, "prepare_threshold", None)
        info["psycopg"] = psycopg.__version__
    return info


def report(
    out: TextIO,
    args: argparse.Namespace,
    url: str,
    info: dict[str, Any],
    build: Build,
    sizes: dict[str, int],
    baseline: Baseline,
    results: list[dict[str, Any]],
) -> None:
    def say(line: str = "") -> None:
        print(line, file=out, flush=True)

    say("briefbot keyword search benchmark")
    machine = (
        f"machine: {info['cpu_count']} cores (os.cpu_count()), Python {info['python']}, "
        f"SQLite {info['sqlite']}, SQLAlchemy {info['sqlalchemy']}"
    )
    if "postgresql" in info:
        machine += f", PostgreSQL {info['postgresql']}, psycopg {info['psycopg']}"
    say(machine)
    say(f"database: {shown(url)}")
    corpus = build.corpus
    say(
        f"corpus: {corpus.items:,} items over {corpus.days:,} days ({corpus.first_day} to "
        f"{corpus.last_day}), {corpus.chinese / corpus.items:.1%} Chinese, seed {args.seed}"
    )
    if build.reused:
        say("ingest: skipped, the database already held these items (--keep)")
    else:
        say(
            f"ingest: Store.upsert_items, one call per day ({build.calls:,} calls): "
            f"{build.seconds:.1f} s = {build.items / build.seconds:,.0f} items/s "
            f"(generating the items took {build.generate_seconds:.1f} s more, not counted)"
        )
        if build.analyze_seconds is not None:
            say(f"ANALYZE after the ingest (not counted): {build.analyze_seconds:.1f} s")
    say(f"database size: {describe_size(sizes)}")
    if "postgresql" in info:
        say(
            f"PostgreSQL: psycopg prepares a statement after {info['prepare_threshold']} "
            f"executions on a connection (prepare_threshold), so {args.runs} runs per class "
            f"include prepared-statement plans"
        )
    say(
        f"index: bot.search.search_page(store, query, limit={LIMIT}, aliases=<the built-in "
        f"table>), {args.runs} runs per class"
    )
    say(
        f"baseline: {baseline.select(1)} (one LIKE per term, bound parameters, rows fetched), "
        f"{args.baseline_runs} runs per class"
        + (" (fewer than the index's: --baseline-runs)" if args.baseline_runs < args.runs else "")
    )
    if baseline.expression != "search_text":
        say("  (the items table has no search_text column now: the baseline reads no tags)")
    say(
        "each query is run once to warm up; timed runs rotate through the class's queries; "
        "p99 is the nearest rank (under 100 runs: the slowest run); "
        f"each figure is the median of {max(args.repeat, 1)} interleaved rounds"
    )
    say()
    say(f"{'':<10}{'index (ms)':>18}{'LIKE baseline (ms)':>22}{'LIKE / index':>18}")
    say(f"{'class':<10}{'p50':>9}{'p99':>9}{'p50':>11}{'p99':>11}{'p50':>9}{'p99':>9}")
    for r in results:
        index, like, ratio = r["index"], r["baseline"], r["ratio"]
        say(
            f"{r['class']:<10}{index['p50_ms']:>9.1f}{index['p99_ms']:>9.1f}"
            f"{like['p50_ms']:>11.1f}{like['p99_ms']:>11.1f}"
            f"{ratio['p50']:>9.2f}{ratio['p99']:>9.2f}"
        )
    say()
    say("the search this index replaced (the same LIKE scan, rows scored in Python):")
    say(f"{'':<10}{'first wave (ms)':>18}{'first wave / index':>22}")
    say(f"{'class':<10}{'p50':>9}{'p99':>9}{'p50':>11}{'p99':>11}")
    for r in results:
        first, ratio = r["first_wave"], r["first_wave_ratio"]
        say(
            f"{r['class']:<10}{first['p50_ms']:>9.1f}{first['p99_ms']:>9.1f}"
            f"{ratio['p50']:>11.1f}{ratio['p99']:>11.1f}"
        )
    say()
    say(
        "matches per query: search_page's total / rows the baseline fetched (at most "
        f"{BASELINE_ROWS}) / items whose title, summary or tags contain the text"
    )
    for r in results:
        queries = " · ".join(
            f"{q['query']} {q['search_page_total']:,}/{q['baseline_rows']:,}/"
            f"{q['items_containing']:,}"
            for q in r["queries"]
        )
        say(f"  {r['class']:<10}{queries}")
    for r in results:
        for q in r["queries"]:
            if (q["search_page_total"] == 0) != (q["items_containing"] == 0):
                say(
                    f"note: {q['query']!r}: search_page found {q['search_page_total']:,}, "
                    f"{q['items_containing']:,} items contain the text"
                )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--items", type=int, default=100_000, help="corpus size (100000)")
    parser.add_argument("--runs", type=int, default=50, help="timed runs per class (50)")
    parser.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="measure every class this many times, interleaved; report the medians (3)",
    )
    parser.add_argument(
        "--baseline-runs", type=int, help="timed runs per class of the LIKE baseline (--runs)"
    )
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--database-url",
        help="SQLite or PostgreSQL URL; it is emptied first unless --keep finds the items "
        "(default: a SQLite file in a temporary folder)",
    )
    where.add_argument(
        "--postgres", action="store_true", help=f"the same as --database-url {POSTGRES_URL}"
    )
    parser.add_argument(
        "--keep",
        action="store_true",
        help="reuse a database that already holds this corpus (--items, --seed; the default "
        "SQLite file is then kept in the temporary folder for the next run)",
    )
    parser.add_argument("--seed", type=int, default=SEED, help=f"corpus seed ({SEED})")
    parser.add_argument(
        "--json",
        action="store_true",
        help="print a JSON summary on stdout (the readable report goes to stderr)",
    )
    args = parser.parse_args()
    if args.items < 1 or args.runs < 1:
        parser.error("--items and --runs must be at least 1")
    args.baseline_runs = args.baseline_runs or args.runs

    with tempfile.TemporaryDirectory(prefix="briefbot-search-") as folder:
        url = args.database_url or (POSTGRES_URL if args.postgres else "")
        if not url:
            path = (
                Path(tempfile.gettempdir())
                / "briefbot-bench"
                / f"search-{args.items}-{args.seed}.db"
                if args.keep
                else Path(folder) / "search.db"
            )
            url = f"sqlite:///{path}"
        refuse_forbidden(url)
        if is_postgres(url):
            create_postgres_database(url)
        store = Store.open(url)
        try:
            kept = reuse(store, args.items, args.seed) if args.keep else None
            if kept is not None:
                build = kept
            else:
                if store.count_items():  # not the size asked for, or not --keep
                    store = empty_database(url, store)
                build = ingest(store, args.items, args.seed)
                stored = store.count_items()
                if stored != args.items:
                    sys.exit(f"the store holds {stored:,} items after the ingest of {args.items:,}")
            sizes = database_size(store)
            info = versions(store)
            baseline = Baseline(store)
            # the corpus texts kept for the true counts are millions of objects: without
            # this, the garbage collector's full passes over them land in the timings
            gc.collect()
            gc.freeze()
            # every class once per round, rounds repeated: a burst of noise on this shared
            # machine lands in one round of one class, and the median of the rounds drops it
            rounds: list[list[dict[str, Any]]] = []
            for n in range(max(args.repeat, 1)):
                rounds.append([])
                for cls in QUERY_CLASSES:
                    print(f"  round {n + 1}: {cls.name} …", file=sys.stderr, flush=True)
                    rounds[-1].append(
                        run_class(store, baseline, cls, args.runs, args.baseline_runs, build.texts)
                    )
            results = [median_of_rounds([r[i] for r in rounds]) for i in range(len(QUERY_CLASSES))]
        finally:
            store.close()

    out = sys.stderr if args.json else sys.stdout
    report(out, args, url, info, build, sizes, baseline, results)
    if args.json:
        summary = {
            "items": args.items,
            "seed": args.seed,
            "runs": args.runs,
            "baseline_runs": args.baseline_runs,
            "database": {
                "dialect": make_url(url).get_backend_name(),
                "url": shown(url),
                "size_bytes": sizes,
            },
            "machine": info,
            "ingest": {
                "reused": build.reused,
                "calls": build.calls,
                "seconds": build.seconds,
                "items_per_second": build.items / build.seconds if build.seconds else None,
                "analyze_seconds": build.analyze_seconds,
                "chinese_share": build.corpus.chinese / build.corpus.items
                if build.corpus.items
                else None,
            },
            "index_call": f"bot.search.search_page(store, query, limit={LIMIT})",
            "baseline_sql": baseline.select(1),
            "classes": results,
            "measured_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        }
        json.dump(summary, sys.stdout, ensure_ascii=False, indent=2)
        print()


if __name__ == "__main__":
    main()
