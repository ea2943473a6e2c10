"""Build the Jinja2 environment of one platform: where its templates are, how it escapes."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, StrictUndefined
from jinja2.sandbox import SandboxedEnvironment
from markupsafe import escape

from bot.errors import RenderError
from bot.render.length import utf16_len
from bot.render.split import BLOCK_BREAK

# Formats that render a whole document, unsplit, with no platform behind them.
DOCUMENT_FORMATS = ("markdown",)

_LINK_SCHEMES = frozenset({"http", "https", "tg"})
_WHITESPACE_RUN = re.compile(r"\s+")
_MARKDOWN_LABEL_SPECIAL = re.compile(r"([\\\[\]()])")
# What a work-chat robot's Markdown would read as syntax in content: emphasis, code, links,
# HTML-like tags (<font>, <at>), and a heading or quote marker at the start of a line.
_MARKDOWN_TEXT_SPECIAL = re.compile(r"([\\`*_\[\]<>~|])")
_MARKDOWN_LINE_START = re.compile(r"^(\s*)([#>+-])(?=\s)", re.MULTILINE)
_MARKDOWN_LIST_NUMBER = re.compile(r"^(\s*\d+)\.(?=\s)", re.MULTILINE)


def default_template_dir() -> Path:
    """Return the built-in templates: ``bot/templates`` in a wheel, else ``<repo>/templates``."""
    package = Path(__file__).resolve().parent.parent
    bundled = package / "templates"
    if bundled.is_dir():
        return bundled
    return package.parent / "templates"


def template_folders(platform: str, template_dir: Path | None = None) -> list[Path]:
    """The folders searched for ``platform``'s templates, the override folder first."""
    folders = [] if template_dir is None else [template_dir / platform]
    folders.append(default_template_dir() / platform)
    return folders


class BlockBreak:
    """Written by a template as ``{{ block_break }}`` between items: the preferred split point."""

    def __str__(self) -> str:
        return BLOCK_BREAK

    def __html__(self) -> str:
        return BLOCK_BREAK


def _finalize(value: object) -> object:
    # Only {{ block_break }} may emit the marker: user content cannot forge a split point.
    if isinstance(value, BlockBreak):
        return BLOCK_BREAK
    if isinstance(value, str):
        return value.replace(BLOCK_BREAK, "")
    return value


def _oneline(value: object) -> str:
    """Collapse every whitespace run (newlines included) to one space: for headlines."""
    return _WHITESPACE_RUN.sub(" ", str(value)).strip()


def _markdown_label(value: object) -> str:
    """Escape what would end or confuse a Markdown link label: ``\\ [ ] ( )``."""
    return _MARKDOWN_LABEL_SPECIAL.sub(r"\\\1", _oneline(value))


def _markdown_text(value: object) -> str:
    """Content as Markdown text: every character the dialects read as syntax is escaped with
    a backslash (CommonMark), so a headline can never become a link, a tag or a heading."""
    escaped = _MARKDOWN_TEXT_SPECIAL.sub(r"\\\1", str(value))
    escaped = _MARKDOWN_LINE_START.sub(lambda m: f"{m.group(1)}\\{m.group(2)}", escaped)
    return _MARKDOWN_LIST_NUMBER.sub(lambda m: f"{m.group(1)}\\.", escaped)


_HASHTAG_SAFE = re.compile(r"^[\w\s.\-]+$")
_HASHTAG_JOIN = re.compile(r"[\s.\-]+")


def hashtag(value: object) -> str:
    """A tag as a Telegram hashtag: letters, digits and _ only ("GPT-5" → "#GPT_5"); a tag
    that would lose its meaning ("C++") stays plain text instead of a broken hashtag."""
    tag = _oneline(value)
    joined = _HASHTAG_JOIN.sub("_", tag).strip("_")
    if not joined or not _HASHTAG_SAFE.match(tag):
        return tag
    return f"#{joined}"


def _markdown_url(value: object) -> str:
    """Percent-encode what would end a Markdown link destination: whitespace, parentheses, <>."""
    url = str(value).strip()
    for char, code in ((" ", "%20"), ("(", "%28"), (")", "%29"), ("<", "%3C"), (">", "%3E")):
        url = url.replace(char, code)
    return _WHITESPACE_RUN.sub("%20", url)


def _is_linkable(url: object, max_units: int) -> bool:
    """Whether ``url`` can be an HTML link: a known scheme and short enough once escaped."""
    text = str(url)
    try:
        scheme = urlsplit(text).scheme.lower()
    except ValueError:
        return False
    return scheme in _LINK_SCHEMES and utf16_len(str(escape(text))) <= max_units


def known_formats() -> tuple[str, ...]:
    """What can be rendered: every platform in the registry, and the document formats."""
    from bot.platforms import names

    return (*names(), *DOCUMENT_FORMATS)


def make_environment(
    platform: str, template_dir: Path | None = None, *, autoescape: bool = False
) -> Environment:
    """Return a new environment for ``platform``'s templates; ``template_dir`` overrides.

    Templates of an HTML platform are autoescaped (``autoescape``); the others are plain
    text. Either way content is data passed to a template, never parsed as template syntax.
    """
    if platform not in known_formats():
        raise RenderError(
            f"unknown platform {platform!r}: expected one of {', '.join(known_formats())}"
        )
    loader = ChoiceLoader(
        [FileSystemLoader(folder) for folder in template_folders(platform, template_dir)]
    )
    environment = SandboxedEnvironment(
        loader=loader,
        autoescape=autoescape,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        finalize=_finalize,
        auto_reload=False,
    )
    environment.globals["block_break"] = BlockBreak()
    environment.globals["platform"] = platform
    environment.filters["oneline"] = _oneline
    environment.filters["md_label"] = _markdown_label
    environment.filters["md_url"] = _markdown_url
    environment.filters["md"] = _markdown_text
    environment.filters["hashtag"] = hashtag
    # JSON documents (the outbound webhook) keep Chinese readable and their keys in order
    environment.policies["json.dumps_kwargs"] = {"ensure_ascii": False, "sort_keys": False}
    environment.tests["linkable"] = _is_linkable
    return environment
