"""Tests for finding and dispatching content files, the shipped samples and FORMATS.md."""

from __future__ import annotations

import datetime as dt
import http.server
import re
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.errors import ContentError
from bot.ingest import (
    SAMPLES_DIR,
    discover,
    fetch_feed,
    parse_archive,
    parse_feed,
    parse_file,
    parse_markdown,
)

FIXTURES = Path(__file__).parent / "fixtures" / "ingest"
FORMATS = Path(__file__).parent.parent / "bot" / "ingest" / "FORMATS.md"


def test_discover_expands_folders_recursively_and_sorts(tmp_path: Path) -> None:
    (tmp_path / "b" / "deep").mkdir(parents=True)
    (tmp_path / ".git").mkdir()
    for name in ("b/deep/z.md", "b/a.TXT", "c.markdown", "d.rss", "e.atom", "f.xml", "g.json"):
        (tmp_path / name).write_text("x", encoding="utf-8")
    (tmp_path / ".git" / "h.md").write_text("x", encoding="utf-8")
    (tmp_path / ".hidden.md").write_text("x", encoding="utf-8")
    single = tmp_path / "c.markdown"

    found = discover([tmp_path, single])

    assert [p.relative_to(tmp_path).as_posix() for p in found] == [
        "b/a.TXT",
        "b/deep/z.md",
        "c.markdown",
        "d.rss",
        "e.atom",
        "f.xml",
    ]


def test_discover_missing_path_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(ContentError, match="no such file") as info:
        discover([FIXTURES, missing])
    assert info.value.path == str(missing)


def test_discover_rejects_an_explicit_unsupported_file(tmp_path: Path) -> None:
    path = tmp_path / "brief.docx"
    path.write_bytes(b"")
    with pytest.raises(ContentError, match=r"unsupported file type '\.docx'"):
        discover([path])
    with pytest.raises(ContentError, match="unsupported file type"):
        parse_file(path)


def test_parse_file_dispatches_by_suffix() -> None:
    kinds = {p.suffix: parse_file(p) for p in discover([FIXTURES])}
    assert set(kinds) == {".md", ".txt", ".rss", ".atom"}
    assert all(doc.items for doc in kinds.values())


def test_parse_file_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ContentError, match="cannot read"):
        parse_file(tmp_path / "gone.md")


def test_samples_cover_a_week_and_parse() -> None:
    paths = discover([SAMPLES_DIR])
    docs = [parse_file(p) for p in paths]
    items = [item for doc in docs for item in doc.items]
    per_day = Counter(item.date for item in items)

    week = [dt.date(2026, 11, 21) + dt.timedelta(days=n) for n in range(7)]
    markdown_days = {i.date for d in docs if d.path.endswith(".md") for i in d.items}
    assert sorted(markdown_days) == week
    assert all(5 <= per_day[day] <= 7 for day in week)
    assert any(p.suffix == ".txt" for p in paths)
    assert dt.date(2026, 11, 20) in per_day
    # Positions are 0..n-1 within each day.
    for day in per_day:
        assert sorted(i.position for i in items if i.date == day) == list(range(per_day[day]))
    # Search demos rely on these words; renderers on some HTML-hostile text.
    text = [f"{i.title}\n{i.summary}" for i in items]
    for word in ("芯片", "量化", "Transformer", "open-source"):
        assert sum(word in t for t in text) >= 3, word
    assert any("&" in t for t in text)
    assert any("<" in t for t in text)
    assert any('"' in i.title for i in items)
    assert any(link.label == "论文地址" for i in items for link in i.links)
    assert all(doc.briefs for doc in docs)


def _examples(language: str) -> list[str]:
    text = FORMATS.read_text(encoding="utf-8")
    return re.findall(rf"```{language}\n(.*?)```", text, flags=re.DOTALL)


def test_formats_doc_examples_parse() -> None:
    day, item = _examples("markdown")
    assert [i.title for i in parse_markdown(day).items] == [
        "英伟达发布新一代推理芯片",
        "Meta开源多模态模型",
    ]
    assert parse_markdown(item).items[0].position == 2
    (archive,) = _examples("text")
    assert len(parse_archive(archive).items) == 2


@pytest.fixture
def feed_server() -> Iterator[str]:
    body = (FIXTURES / "feed.rss").read_bytes()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/feed.rss":
                self.send_response(200)
                self.send_header("Content-Type", "application/rss+xml")
                self.end_headers()
                self.wfile.write(body)
            else:
                self.send_error(404)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_fetch_feed_from_a_loopback_server(feed_server: str) -> None:
    data = fetch_feed(f"{feed_server}/feed.rss", timeout=5)
    assert len(parse_feed(data).items) == 3
    with pytest.raises(ContentError, match="HTTP 404") as info:
        fetch_feed(f"{feed_server}/missing.rss", timeout=5)
    assert info.value.path == f"{feed_server}/missing.rss"
