"""Telegram rendering: escaping, and splitting within 4096 UTF-16 units and 100 entities."""

from __future__ import annotations

import datetime as dt
import itertools
import re
from html.parser import HTMLParser

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.domain import Brief, Item, Link
from bot.errors import RenderError
from bot.platforms.base import LengthUnit, Limits
from bot.platforms.telegram import LIMITS as TELEGRAM_LIMITS
from bot.render import BLOCK_BREAK, Renderer, measure, split_rendered, utf16_len

DAY = dt.date(2026, 11, 27)
TELEGRAM_TAGS = {"b", "strong", "i", "em", "u", "s", "a", "code", "pre", "blockquote"}


class TelegramFragment(HTMLParser):
    """Reads one message as Telegram would: checks nesting, counts elements, collects text."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.open: list[str] = []
        self.elements = 0
        self.chunks: list[str] = []
        # Telegram rejects a bare <, > or & outside tags and entities
        bare = re.sub(r"<[^<>]*>|&(#\d+|#x[0-9a-f]+|[a-z]+);", "", text, flags=re.I)
        assert not re.search(r"[<>&]", bare), text
        self.feed(text)
        self.close()
        assert not self.open, f"unclosed {self.open} in {text!r}"

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        assert tag in TELEGRAM_TAGS, tag
        if tag == "a":
            assert [name for name, _ in attrs] == ["href"]
        self.open.append(tag)
        self.elements += 1

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        raise AssertionError(f"self-closing <{tag}/>")

    def handle_endtag(self, tag: str) -> None:
        assert self.open and self.open[-1] == tag, f"</{tag}> closes {self.open}"
        self.open.pop()

    def handle_data(self, data: str) -> None:
        self.chunks.append(data)

    @property
    def visible(self) -> str:
        return "".join(self.chunks)


def assert_valid_split(pieces: list[str], whole: str, limits: Limits) -> None:
    """Each piece fits and is balanced; their visible text is the whole's, less boundary spaces.

    Exactly: the whole's visible text is piece 1, whitespace, piece 2, …, whitespace, piece n
    (each whitespace run possibly empty), with leading and trailing whitespace allowed.
    """
    assert pieces
    visible = []
    for piece in pieces:
        assert measure(piece, limits.length_unit) <= limits.max_length
        fragment = TelegramFragment(piece)
        if limits.max_entities is not None:
            assert fragment.elements <= limits.max_entities
        assert fragment.visible.strip() == fragment.visible != "", piece
        visible.append(fragment.visible)
    original = TelegramFragment(whole.replace(BLOCK_BREAK, "")).visible
    pattern = r"\s*" + r"\s*".join(re.escape(v) for v in visible) + r"\s*"
    assert re.fullmatch(pattern, original, flags=re.DOTALL), "visible text lost or changed"


def split_checked(brief: Brief, limits: Limits = TELEGRAM_LIMITS) -> list[str]:
    """Render ``brief`` for Telegram, check the split, return the messages' texts."""
    messages = renderer.brief(brief, "telegram", limits)
    assert all(m.parse_mode == "html" for m in messages)
    texts = [m.text for m in messages]
    assert_valid_split(texts, renderer.brief_document(brief, "telegram", limits), limits)
    return texts


def brief_of(items: list[Item], *, intro: str = "今天的要闻。", footer: str = "— 完 —") -> Brief:
    return Brief(date=DAY, title="AI 简报", items=tuple(items), intro=intro, footer=footer)


def item(n: int, summary: str = "第一段。\n\n第二段。", **kwargs: object) -> Item:
    links = kwargs.pop("links", (Link("原文", f"https://example.com/{n}"),))
    return Item(DAY, kwargs.pop("title", f"标题 {n}"), summary, links, **kwargs)  # type: ignore[arg-type]


# -- property: random content ----------------------------------------------------------------

PIECES = [*"abc xyz<>&\"'。！？.!?,:\n", *"🚀😀中文字é\u0301", "🇨🇳", "👨‍👩‍👧", "&amp;"]
SOLID = [p for p in PIECES if not p.isspace()]


def text_from(pieces: list[str], max_size: int) -> st.SearchStrategy[str]:
    return st.lists(st.sampled_from(pieces), max_size=max_size).map("".join)


short_text = text_from(PIECES, 30)
# > 4096 UTF-16 units and no spaces: only a hard split can cut it
long_text = st.tuples(text_from(SOLID, 4).filter(bool), st.integers(4097, 4600)).map(
    lambda t: (t[0] * t[1])[: t[1]]
)
paragraph = st.one_of(*[short_text] * 5, long_text)
url = st.one_of(*[short_text] * 3, long_text).map(lambda s: "https://example.com/" + s)
link = st.builds(Link, label=text_from(SOLID, 8).filter(bool), url=url)
random_item = st.builds(
    Item,
    date=st.just(DAY),
    title=st.one_of(*[short_text] * 5, long_text),
    summary=st.lists(paragraph, max_size=4).map("\n\n".join),
    links=st.lists(link, max_size=3).map(tuple),
    tags=st.lists(text_from(SOLID, 5), max_size=2).map(tuple),
    section=st.sampled_from([None, "模型", "芯片 & <硬件>"]),
)
random_brief = st.builds(
    Brief,
    date=st.just(DAY),
    title=short_text,
    items=st.lists(random_item, min_size=1, max_size=5).map(tuple),
    intro=paragraph,
    footer=short_text,
    publisher=st.one_of(st.none(), short_text),
)

renderer = Renderer()


@settings(deadline=None, max_examples=40, suppress_health_check=[HealthCheck.too_slow])
@given(random_brief)
def test_random_briefs_split_within_telegram_limits(brief: Brief) -> None:
    split_checked(brief)


@settings(deadline=None, max_examples=30, suppress_health_check=[HealthCheck.too_slow])
@given(random_brief, st.integers(160, 1200), st.integers(2, 12))
def test_random_briefs_split_within_small_limits(
    brief: Brief, max_length: int, max_entities: int
) -> None:
    limits = TELEGRAM_LIMITS.with_overrides(max_length=max_length, max_entities=max_entities)
    split_checked(brief, limits)


# Nested elements (at most three deep), as an override template might write them.
leaf = text_from(
    ["x", "y", " ", "\n", "\n\n", "。", ". ", "🚀", "&amp;", "&lt;", "&#34;", "中"], 40
)
OPENERS = ["b", "i", "blockquote", 'a href="https://e.com/?q=&#34;&amp;"']


def elements(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.tuples(st.sampled_from(OPENERS), st.lists(inner, min_size=1, max_size=4)).map(
        lambda t: f"<{t[0]}>" + "".join(t[1]) + f"</{t[0].split()[0]}>"
    )


nested_html = leaf
for _ in range(3):
    nested_html = st.one_of(leaf, elements(nested_html))


@settings(deadline=None, max_examples=120)
@given(
    st.lists(nested_html, min_size=1, max_size=8).map(BLOCK_BREAK.join),
    # three open elements and one character always fit in 150 units and 4 entities
    st.integers(150, 400),
    st.integers(4, 20),
)
def test_splitter_keeps_nested_html_balanced(html: str, max_length: int, entities: int) -> None:
    limits = Limits(max_length=max_length, length_unit=LengthUnit.UTF16, max_entities=entities)
    if not TelegramFragment(html.replace(BLOCK_BREAK, "")).visible.strip():
        assert split_rendered(html, limits, html_mode=True) == []
        return
    pieces = split_rendered(html, limits, html_mode=True)
    assert_valid_split(pieces, html, limits)


# -- deterministic cases ---------------------------------------------------------------------


def test_many_items_split_between_items_only() -> None:
    summary = "这是一段关于人工智能的新闻摘要。" * 9 + "\n\n" + "Second paragraph. " * 8
    items = [item(n, summary, section="模型" if n < 20 else "芯片") for n in range(1, 41)]
    brief = brief_of(items)
    messages = split_checked(brief)
    assert len(messages) > 3
    assert messages[0].startswith("<b>AI 简报</b>")
    assert "今天的要闻。" in messages[0]
    assert messages[-1].endswith("— 完 —")
    for n, it in enumerate(items, start=1):
        holding = [m for m in messages if f"<b>{n}. {it.title}</b>" in m]
        assert len(holding) == 1, f"item {n} is cut"
        assert it.paragraphs[-1] in holding[0]
        assert f'<a href="https://example.com/{n}">原文</a>' in holding[0]
    # greedy: the next message's first item would not have fitted in the one before
    for before, after in itertools.pairwise(messages):
        first_block = re.split(r"\n\n(?=<b>(?:\d+\.|【))", after)[0]
        assert utf16_len(before) + 2 + utf16_len(first_block) > 4096
    # a section heading shows when the section changes, and stays with its item
    joined = "\n".join(messages)
    assert joined.count("<b>【模型】</b>") == 1
    assert joined.count("<b>【芯片】</b>") == 1
    assert "<b>【芯片】</b>\n<b>20. " in joined


def test_content_is_escaped_and_links_attribute_escaped() -> None:
    it = item(
        1,
        'a <script> & "quoted" {{ 7*7 }}',
        title="<b>bold?</b> & {{ 7*7 }}",
        links=(
            Link("原文 <1>", 'https://example.com/?a=1&b="2"'),
            Link("论文地址", "javascript:alert(1)"),
        ),
    )
    (message,) = renderer.brief(brief_of([it]), "telegram")
    text = message.text
    assert "<b>1. &lt;b&gt;bold?&lt;/b&gt; &amp; {{ 7*7 }}</b>" in text
    assert "a &lt;script&gt; &amp; &#34;quoted&#34; {{ 7*7 }}" in text
    assert '<a href="https://example.com/?a=1&amp;b=&#34;2&#34;">原文 &lt;1&gt;</a>' in text
    # only http(s) and tg links become elements; anything else is written out as text
    assert "论文地址: javascript:alert(1)" in text
    assert "49" not in text
    TelegramFragment(text)


def test_url_too_long_for_a_link_is_written_out() -> None:
    long_url = "https://example.com/" + "x" * 3000
    it = item(1, links=(Link("原文", long_url), Link("论文地址", "https://arxiv.org/abs/1")))
    messages = split_checked(brief_of([it]))
    joined = "".join(messages)
    assert '<a href="https://arxiv.org/abs/1">论文地址</a>' in joined
    assert f'href="{long_url}"' not in joined


def test_long_title_element_is_closed_and_reopened() -> None:
    messages = split_checked(brief_of([item(1, title="标题" * 3000)]))
    assert messages[0] == "<b>AI 简报</b> · 2026-11-27\n今天的要闻。"  # header: a block too
    assert messages[1].startswith("<b>1. 标题标题")
    assert messages[1].endswith("</b>")
    assert messages[2].startswith("<b>")


def test_an_item_that_fits_alone_is_not_cut_to_share_a_message() -> None:
    big = item(2, "一句话。" * 1005)  # about 4070 units: fits alone, not with the header
    messages = split_checked(brief_of([big, item(3)]), TELEGRAM_LIMITS)
    assert len(messages) == 3
    assert messages[0].startswith("<b>AI 简报</b>")
    assert messages[1].startswith("<b>1. 标题 2</b>")
    assert messages[1].endswith('<a href="https://example.com/2">原文</a>')
    assert messages[2].startswith("<b>2. 标题 3</b>")
    assert messages[2].endswith("— 完 —")


def test_long_paragraph_splits_at_sentence_ends() -> None:
    it = item(1, "这是一个完整的句子，讲了一件事。" * 600)
    messages = split_checked(brief_of([it]))
    assert len(messages) >= 3
    for text in messages[:-1]:
        assert TelegramFragment(text).visible.rstrip().endswith("。")


def test_astral_emoji_count_two_units_and_are_never_cut() -> None:
    it = item(1, "🚀" * 5000)
    messages = split_checked(brief_of([it]))
    # the header, then 10000 units of emoji in three 4096-unit messages
    assert len(messages) == 4
    for text in messages:
        assert utf16_len(text) <= 4096
        assert "\ud83d" not in text  # no lone surrogate halves


def test_flags_are_not_cut_between_their_two_letters() -> None:
    it = item(1, "🇨🇳" * 2100)
    messages = split_checked(brief_of([it]))
    assert len(messages) >= 3
    for text in messages:
        flags = re.findall("[\U0001f1e6-\U0001f1ff]+", TelegramFragment(text).visible)
        assert all(len(run) % 2 == 0 for run in flags)


def test_entities_are_never_cut() -> None:
    it = item(1, "&<>" * 3000)
    messages = split_checked(brief_of([it]))
    assert len(messages) >= 8


def test_entity_limit_splits_a_message_with_many_elements() -> None:
    html = "\n".join(f"<b>{n}</b> <i>x</i>" for n in range(300))
    pieces = split_rendered(html, TELEGRAM_LIMITS, html_mode=True)
    assert len(pieces) == 6  # 600 elements, 100 a message
    assert_valid_split(pieces, html, TELEGRAM_LIMITS)
    assert all(p.endswith("</i>") for p in pieces)  # cut at line ends, not inside a line


def test_block_break_in_content_cannot_force_a_split() -> None:
    items = [item(1, f"前半{BLOCK_BREAK}后半", title=f"A{BLOCK_BREAK}B")]
    (message,) = renderer.brief(brief_of(items), "telegram")
    assert BLOCK_BREAK not in message.text
    assert "前半后半" in message.text
    assert "<b>1. A B</b>" in message.text  # a headline is one line: the control char is a space


@pytest.mark.parametrize(
    ("html", "problem"),
    [
        ("a < b", "unescaped"),
        ("fish & chips", "unescaped"),
        ("<b>open", "unclosed"),
        ("<b>x</i>", "unbalanced"),
        ("<div>x</div>", "not allowed"),
        ("x<br/>y", "not allowed"),
    ],
)
def test_malformed_html_is_a_render_error(html: str, problem: str) -> None:
    from bot.platforms.telegram import ALLOWED_TAGS as ALLOWED

    with pytest.raises(RenderError, match=problem):
        split_rendered(html, TELEGRAM_LIMITS, html_mode=True, allowed_tags=ALLOWED)


def test_a_tag_that_cannot_fit_is_a_render_error() -> None:
    html = '<a href="https://example.com/' + "x" * 200 + '">label</a>'
    limits = Limits(max_length=100, length_unit=LengthUnit.UTF16, max_entities=10)
    with pytest.raises(RenderError, match="too much room"):
        split_rendered(html, limits, html_mode=True)


def test_measure_counts_utf16_units_or_code_points() -> None:
    assert utf16_len("a中🚀") == 4
    assert measure("a中🚀", LengthUnit.UTF16) == 4
    assert measure("a中🚀", LengthUnit.CHARS) == 3
    assert utf16_len("") == 0
