"""The offline search's data: every published item and the folding table, as a script.

``search-index.js`` assigns ``window.BRIEFBOT_SEARCH`` so that ``search.html`` works from
``file://`` as well as over HTTP (a ``fetch`` of a JSON file would not). The JSON is written
with ``<``, ``>``, ``&`` and the JavaScript line separators escaped, so no item text can end
the script or be read as markup; ``search.js`` puts it on the page with ``textContent`` only.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable

from bot.search.fold import TABLE
from bot.site.views import BriefView

GLOBAL_NAME = "BRIEFBOT_SEARCH"
_ESCAPES = {
    "<": "\\u003c",
    ">": "\\u003e",
    "&": "\\u0026",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
}


@functools.cache
def t2s_pairs() -> str:
    """Traditional → simplified as one string of (traditional, simplified) character pairs:
    the table :func:`bot.search.fold.fold` uses (read the same way)."""
    pairs: list[str] = []
    for line in TABLE.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            continue
        pairs.extend(line[i : i + 2] for i in range(0, len(line) - 1, 2))
    return "".join(pairs)


def search_records(briefs: Iterable[BriefView]) -> list[dict[str, object]]:
    """One record per item, newest brief first; ``url`` is relative to the site's root."""
    return [
        {
            "url": entry.path,
            "date": view.date.isoformat(),
            "title": entry.item.title,
            "summary": entry.item.summary,
            "tags": list(entry.item.tags),
            "section": entry.item.section or "",
        }
        for view in briefs
        for entry in view.entries
    ]


def script_json(value: object) -> str:
    """``value`` as JSON that is safe inside a script (and an HTML page, should it be inlined)."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    for char, escaped in _ESCAPES.items():
        text = text.replace(char, escaped)
    return text


def search_index_script(briefs: Iterable[BriefView]) -> str:
    data = {"version": 1, "t2s": t2s_pairs(), "items": search_records(briefs)}
    return f"window.{GLOBAL_NAME} = {script_json(data)};\n"
