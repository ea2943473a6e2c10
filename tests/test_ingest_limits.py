"""Hostile or broken content files: each error names the file (and the line where known),
and every other file is still ingested, on SQLite and PostgreSQL alike."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from bot.ingest.importer import import_paths
from bot.ingest.limits import MAX_SUMMARY
from bot.store import Store

GOOD = '---\ndate: 2026-11-27\ntitle: 好的条目\nlinks:\n  - {label: 原文, url: "https://a.example/ok"}\n---\n摘要。\n'


def item_file(folder: Path, name: str, *, front: str = "", body: str = "摘要。") -> None:
    (folder / name).write_text(
        "---\ndate: 2026-11-27\n"
        f"{front or 'title: 条目'}\n"
        f'links:\n  - {{label: 原文, url: "https://a.example/{name}"}}\n---\n{body}\n',
        encoding="utf-8",
    )


def test_each_bad_file_is_named_and_the_others_are_ingested(store: Store, tmp_path: Path) -> None:
    item_file(tmp_path, "a_position.md", front="title: 位置\nposition: 99999999999999999999")
    (tmp_path / "b_deep.md").write_text(
        "---\ndate: 2026-11-27\ntitle: x\nlinks: " + "[" * 5000 + "]" * 5000 + "\n---\nx\n",
        encoding="utf-8",
    )
    item_file(tmp_path, "c_nul.md", body="正文里有\x00一个空字符")
    item_file(tmp_path, "d_section.md", front="title: 分区\nsection: " + "长" * 300)
    item_file(tmp_path, "e_huge.md", body="很长。" * (MAX_SUMMARY // 3 + 1))
    (tmp_path / "z_good.md").write_text(GOOD, encoding="utf-8")

    report = import_paths(store, [tmp_path])

    errors = {Path(f.path).name: f.error or "" for f in report.failed}
    assert set(errors) == {"a_position.md", "b_deep.md", "c_nul.md", "d_section.md", "e_huge.md"}
    assert errors["a_position.md"].endswith(
        "a_position.md:4: front matter: 'position' must be a whole number from 0 to 100000, "
        "got 99999999999999999999"
    )
    assert "b_deep.md:2: invalid YAML front matter: nested too deeply" in errors["b_deep.md"]
    assert "control character U+0000 at character 5" in errors["c_nul.md"]
    assert "the section is 300 characters, over the limit of 200" in errors["d_section.md"]
    assert f"over the limit of {MAX_SUMMARY:,}" in errors["e_huge.md"]
    assert all("Traceback" not in e for e in errors.values())
    assert [i.title for i in store.items_on(dt.date(2026, 11, 27))] == ["好的条目"]
