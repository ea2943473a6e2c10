"""The search index on SQLite and PostgreSQL: Chinese words of every length, English and model
names, folding, aliases, syntax safety, staying in sync, ranking, paging and counts."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from bot.domain import Item, Link
from bot.search import CANDIDATES, search, search_page
from bot.search.aliases import Aliases
from bot.search.fold import fold
from bot.search.snippet import plain, snippet
from bot.search.tokens import index_tokens, parse_query
from bot.store import Store
from tests.factories import DAY, make_item

DEFAULTS = Aliases.from_settings(())


def titles(store: Store, query: str, **kwargs: object) -> list[str]:
    return [r.item.title for r in search(store, query, limit=20, **kwargs)]  # type: ignore[arg-type]


CORPUS = [
    make_item("地平线发布征程6芯片", summary="面向智能驾驶。", position=0),
    make_item("强化学习新算法登顶榜单", summary="在多个基准上超过此前方法。", position=1),
    make_item("OpenAI 发布 GPT-5", summary="GPT-5 在推理上大幅提升。", position=2),
    make_item("o5-mini 开放 API", summary="价格下降一半。", position=3),
    make_item("英伟达发布 FP4 推理方案", summary="Blackwell 支持 FP4。", position=4),
    make_item("A Transformer for VR headsets", summary="BN layers removed.", position=5),
    make_item("GPT-4 5 周年回顾", summary="回顾历代模型。", position=6),
    make_item("擴散模型生成影片", summary="新的顯卡加速方案。", position=7),
    make_item("Diffusion model beats GANs", summary="An English-only item.", position=8),
    make_item("Cats or dogs: a vision benchmark", summary="Plain English.", position=9),
    make_item("100% 提升的量化方法", summary="无损。", position=10),
]


@pytest.fixture
def corpus(store: Store) -> Store:
    store.upsert_items(CORPUS)
    return store


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("芯", "地平线发布征程6芯片"),  # one character
        ("芯片", "地平线发布征程6芯片"),  # two
        ("地平线", "地平线发布征程6芯片"),  # three
        ("强化学习", "强化学习新算法登顶榜单"),  # four
        ("transformer", "A Transformer for VR headsets"),
        ("VR", "A Transformer for VR headsets"),
        ("bn", "A Transformer for VR headsets"),
        ("o5-mini", "o5-mini 开放 API"),
        ("fp4", "英伟达发布 FP4 推理方案"),
        ("GPT-5发布", "OpenAI 发布 GPT-5"),  # a model name and a Chinese word in one term
        ("ＧＰＴ－５", "OpenAI 发布 GPT-5"),  # full-width folds
        ("扩散", "擴散模型生成影片"),  # simplified finds traditional
        ("顯卡", "擴散模型生成影片"),  # and the other way round
    ],
)
def test_words_of_every_kind_are_found(corpus: Store, query: str, expected: str) -> None:
    assert titles(corpus, query)[0] == expected


def test_a_compound_is_its_parts_in_order(corpus: Store) -> None:
    assert titles(corpus, "GPT-5") == ["OpenAI 发布 GPT-5"]  # not "GPT-4 5 周年"
    assert set(titles(corpus, "gpt")) == {"OpenAI 发布 GPT-5", "GPT-4 5 周年回顾"}
    assert titles(corpus, "o5") == ["o5-mini 开放 API"]


def test_a_longer_chinese_word_is_a_phrase_not_scattered_characters(store: Store) -> None:
    store.upsert_items(
        [
            make_item("学习强化训练", summary="字都在，词不在。", position=0),
            make_item("强化学习入门", summary="词在。", position=1),
        ]
    )
    assert titles(store, "强化学习") == ["强化学习入门"]


def test_aliases_cross_languages_both_ways(corpus: Store) -> None:
    assert "Diffusion model beats GANs" in titles(corpus, "扩散模型", aliases=DEFAULTS)
    assert "擴散模型生成影片" in titles(corpus, "diffusion", aliases=DEFAULTS)
    assert titles(corpus, "chip", aliases=DEFAULTS) == ["地平线发布征程6芯片"]
    assert titles(corpus, "chip") == []  # without the table, no magic
    own = Aliases.from_settings([("征程", "journey")], defaults=False)
    assert titles(corpus, "journey", aliases=own) == ["地平线发布征程6芯片"]


@pytest.mark.parametrize(
    "query",
    [
        '"',
        '" OR 1=1 --',
        "*",
        "gpt*",
        "NEAR(gpt api)",
        "-gpt",
        "(",
        ")",
        "a AND",
        "%",
        "_",
        "\\",
        "{title}: x",
        "^gpt",
        "'; DROP TABLE items; --",
        "<b>x</b>",
        "{{ 7*7 }}",
        "x" * 5000,
    ],
)
def test_user_text_is_never_query_syntax(corpus: Store, query: str) -> None:
    page = search_page(corpus, query, max_length=64)
    assert all(r.item.title for r in page.results)  # no error, whatever it finds
    assert corpus.count_items() == len(CORPUS)


def test_operators_are_plain_words(corpus: Store) -> None:
    assert titles(corpus, "OR") == ["Cats or dogs: a vision benchmark"]
    assert titles(corpus, "gpt*") == titles(corpus, "gpt")
    assert titles(corpus, "100%") == ["100% 提升的量化方法"]
    assert titles(corpus, "%") == []


def test_a_very_long_query_is_cut_not_refused(corpus: Store) -> None:
    page = search_page(corpus, "地平线" + "很长" * 1000, max_length=3)
    assert page.query.text == "地平线"
    assert [r.item.title for r in page.results] == ["地平线发布征程6芯片"]


def test_the_index_follows_reingest_pruning_and_updates(store: Store) -> None:
    store.upsert_items(
        [make_item("旧标题芯片", position=0), make_item("另一条", position=1)], source="a.md"
    )
    assert titles(store, "旧标题") == ["旧标题芯片"]
    store.upsert_items([make_item("新标题芯片", position=0)], source="a.md", prune=True)
    assert titles(store, "旧标题") == []
    assert titles(store, "新标题") == ["新标题芯片"]
    assert titles(store, "另一条") == []  # pruned from the file, gone from the index
    assert store.count_items() == 1
    # a rebuild from the rows gives the same answers
    assert store.reindex() == 1
    assert titles(store, "新标题") == ["新标题芯片"] and titles(store, "旧标题") == []


def test_deleted_rows_leave_the_index(store: Store) -> None:
    store.upsert_items([make_item("要删除的芯片新闻", position=0)])
    with store.engine.begin() as connection:
        connection.execute(text("DELETE FROM items"))
    assert titles(store, "芯片") == []


def test_title_then_tags_then_summary_then_newer(store: Store) -> None:
    older = DAY - dt.timedelta(days=30)
    store.upsert_items(
        [
            make_item("行业观察", summary="文中提到芯片一次。", position=0),
            make_item("新闻一则", summary="无关。", tags=("芯片",), position=1),
            make_item("芯片旧闻", date=older, summary="无关。", position=0),
            make_item("芯片新闻", summary="无关。", position=2),
            make_item("算力", summary="无关。", section="芯片与算力", position=3),
        ]
    )
    assert titles(store, "芯片") == ["芯片新闻", "芯片旧闻", "新闻一则", "算力", "行业观察"]


def test_all_words_required_else_partial_matches_said_so(corpus: Store) -> None:
    full = search_page(corpus, "gpt 推理")
    assert [r.item.title for r in full.results] == ["OpenAI 发布 GPT-5"] and not full.partial
    partial = search_page(corpus, "地平线 不存在的词")
    assert partial.partial and [r.item.title for r in partial.results] == ["地平线发布征程6芯片"]
    assert search_page(corpus, "不存在 也没有").results == []


def test_pages_totals_and_counts_past_the_ranked_candidates(store: Store) -> None:
    start = DAY - dt.timedelta(days=CANDIDATES + 99)
    store.upsert_items(
        make_item(f"芯片新闻 {n}", date=start + dt.timedelta(days=n), position=0)
        for n in range(CANDIDATES + 100)
    )
    first = search_page(store, "芯片", limit=5)
    assert first.total == CANDIDATES + 100 and first.has_more
    second = search_page(store, "芯片", limit=5, offset=5)
    assert [r.item.date for r in first.results + second.results] == [
        DAY - dt.timedelta(days=n) for n in range(10)
    ]
    assert first.took_ms > 0


def test_snippets_mark_hits_in_the_original_text() -> None:
    atoms = parse_query("擴散 gpt").atoms
    parts = snippet("新一代扩散模型与 GPT-5 的对比" + "。" * 200, atoms, width=30)
    assert ("扩散", True) in parts and ("GPT", True) in parts
    assert plain(parts).endswith("…")
    # a word inside a longer word is not a hit
    assert all(not hit for _, hit in snippet("gpt4o and chatgpt", parse_query("gpt").atoms))
    # its plural is
    assert ("GPTs", True) in snippet("custom GPTs", parse_query("gpt").atoms)


def test_tokens_are_words_only() -> None:
    tokens = index_tokens('GPT-5 "发布" (OR) 100% ＡＩ芯片').split()
    assert tokens == ["gpt", "5", "发布", "发", "布", "or", "100", "ai", "芯片", "芯", "片"]
    assert fold("擴散ＦＵＬＬ") == "扩散full"


def test_queries_are_counted_folded_and_without_people(store: Store) -> None:
    for query, found in (("芯片", True), ("芯片", True), ("量子", False), ("zzz", False)):
        store.count_query(query, found=found, day=DAY)
    store.count_query("旧的", found=True, day=DAY - dt.timedelta(days=40))
    top = store.query_counts(since=DAY - dt.timedelta(days=29))
    assert [(q.query, q.asked) for q in top] == [("芯片", 2), ("zzz", 1), ("量子", 1)]
    assert [q.query for q in store.unanswered_queries(since=DAY)] == ["zzz", "量子"]
    with store.engine.connect() as connection:
        columns = set(connection.execute(text("SELECT * FROM search_queries")).keys())
    assert columns == {"day", "query", "asked", "no_hits"}


def test_a_database_from_before_the_index_is_migrated_and_searchable(store_url: str) -> None:
    from alembic import command
    from alembic.config import Config
    from sqlalchemy.engine import make_url

    from bot.store.database import HEAD_REVISION, MIGRATIONS

    url = make_url(store_url)
    if url.drivername == "postgresql":
        url = url.set(drivername="postgresql+psycopg")
    elif url.database:
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url)
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, "0003")
        connection.execute(
            text(
                "INSERT INTO items (date, identity, title, summary, links, tags, section, "
                "position, search_text, source, created_at, updated_at) VALUES ('2026-11-27', "
                "'u', '擴散模型新進展', 'x', '[{\"label\": \"原文\", \"url\": \"https://e.com\"}]', "
                "'[\"芯片\"]', NULL, 0, 'x', '', '2026-11-27', '2026-11-27')"
            )
        )
    engine.dispose()
    store = Store.open(store_url)
    try:
        assert store.revision() == HEAD_REVISION
        assert titles(store, "扩散") == ["擴散模型新進展"]
        assert titles(store, "芯片") == ["擴散模型新進展"]  # tags were indexed too
        store.upsert_items([make_item("迁移后新增的芯片新闻", position=1)])
        assert titles(store, "迁移后") == ["迁移后新增的芯片新闻"]
    finally:
        store.close()


def test_link_labels_and_sections_are_indexed(store: Store) -> None:
    item = Item(DAY, "标题", "摘要", (Link("论文地址", "https://arxiv.org/x"),), section="开源项目")
    store.upsert_items([item])
    assert titles(store, "论文地址") == ["标题"]
    assert titles(store, "开源项目") == ["标题"]


def test_the_settings_aliases_reach_every_search(tmp_path: Path) -> None:
    from bot.config import load_settings
    from bot.core import build_core

    config = tmp_path / "b.toml"
    config.write_text(
        '[search]\naliases = [["征程", "journey"]]\ndefault_aliases = false\n', encoding="utf-8"
    )
    core = build_core(load_settings(str(config)), database_url=f"sqlite:///{tmp_path / 'a.db'}")
    try:
        core.store.upsert_items(CORPUS)
        assert [r.item.title for r in core.search("journey").results] == ["地平线发布征程6芯片"]
        assert core.search("chip").results == []  # the built-in table is off
    finally:
        core.store.close()


def test_counting_stops_at_its_limit_and_says_so(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    import bot.store.search_index as index

    monkeypatch.setattr(index, "COUNT_LIMIT", CANDIDATES + 20)
    start = DAY - dt.timedelta(days=CANDIDATES + 99)
    store.upsert_items(
        make_item(f"芯片新闻 {n}", date=start + dt.timedelta(days=n), position=0)
        for n in range(CANDIDATES + 100)
    )
    page = search_page(store, "芯片")
    assert (page.total, page.total_exact) == (CANDIDATES + 20, False)
    from bot.render import Renderer

    (reply,) = Renderer().search_results(
        "芯片", [], "wechat", total=page.total, results=page.results, total_exact=False
    )
    assert f"共 {CANDIDATES + 20}+ 条" in reply.text


def test_english_plurals_and_singulars_find_each_other(store: Store) -> None:
    store.upsert_items(
        [
            make_item("Transformers everywhere", summary="x", position=0),
            make_item("One agent to rule them", summary="x", position=1),
            make_item("New GPUs ship", summary="x", position=2),
            make_item("AI news roundup", summary="x", position=3),
        ]
    )
    assert titles(store, "transformer") == ["Transformers everywhere"]
    assert titles(store, "agents") == ["One agent to rule them"]
    assert titles(store, "gpu") == ["New GPUs ship"]
    assert titles(store, "new") == ["New GPUs ship"]  # "news" is not the plural of "new"
    page = search_page(store, "transformer")
    assert ("Transformers", True) in page.results[0].title


def test_taiwan_words_find_mainland_items_and_aliases_are_transitive(store: Store) -> None:
    store.upsert_items(
        [
            make_item("人工智能芯片出货量翻倍", summary="x", position=0),
            make_item("英伟达发布新显卡", summary="x", position=1),
            make_item("New AI benchmark", summary="x", position=2),
        ]
    )
    # 人工智慧 (Taiwan) ↔ 人工智能 ↔ "ai": one meaning though listed in two groups
    assert set(titles(store, "人工智慧", aliases=DEFAULTS)) == {
        "人工智能芯片出货量翻倍",
        "New AI benchmark",
    }
    assert titles(store, "輝達", aliases=DEFAULTS) == ["英伟达发布新显卡"]
    assert titles(store, "顯卡", aliases=DEFAULTS) == ["英伟达发布新显卡"]
