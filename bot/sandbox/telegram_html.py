"""Parse Telegram's HTML subset into visible text and message entities, as the Bot API does."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

__all__ = ["EntityParseError", "parse_html", "utf16_len"]

# Tag → entity type.  ``a``, ``span``, ``pre``, ``blockquote`` and ``tg-emoji`` need
# attributes and are handled separately in ``_entity_for``.
_SIMPLE_TAGS = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "code": "code",
    "tg-spoiler": "spoiler",
}
_SUPPORTED_TAGS = frozenset({*_SIMPLE_TAGS, "a", "span", "pre", "blockquote", "tg-emoji"})
_NAMED_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_ENTITY_RE = re.compile(r"&(#[0-9]{1,8}|#[xX][0-9a-fA-F]{1,7}|[a-zA-Z][a-zA-Z0-9]{0,31});")
_TAG_NAME_RE = re.compile(r"[a-zA-Z0-9-]*")
_ATTR_NAME_RE = re.compile(r"[a-zA-Z0-9_-]+")


class EntityParseError(ValueError):
    """The text is not valid Telegram HTML; ``str(err)`` is the Bot API's wording after the
    "can't parse entities: " prefix."""


def utf16_len(text: str) -> int:
    """Length of ``text`` in UTF-16 code units, the unit Telegram counts offsets and limits in."""
    return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)


@dataclass
class _OpenTag:
    name: str
    attrs: dict[str, str]
    offset: int  # UTF-16 offset in the output where the tag's content starts
    byte_offset: int  # UTF-8 offset of "<" in the input, for error messages
    entity_index: int = field(default=0)  # len(entities) when the tag opened


def parse_html(html: str, *, strict: bool = True) -> tuple[str, list[dict[str, Any]]]:
    """Return ``(visible_text, entities)`` for a ``parse_mode=HTML`` message.

    Entities carry ``type``, ``offset`` and ``length`` in UTF-16 code units, plus ``url``
    (text_link), ``language`` (pre) or ``custom_emoji_id`` (custom_emoji); they are sorted by
    offset, outer entities first, and empty ones are dropped, as Telegram does.

    With ``strict`` (the default) an ``&`` that does not start one of the supported entities
    (``&lt; &gt; &amp; &quot;`` and numeric ones) is an error; the real server keeps such text
    literally, but a renderer that leaves ``&`` unescaped is buggy, so tests should hear about it.

    Raises:
        EntityParseError: unsupported or unbalanced tags, a bare ``<``, a bad ``&`` (strict).
    """
    out: list[str] = []
    pos16 = 0  # UTF-16 length of "".join(out)
    stack: list[_OpenTag] = []
    entities: list[dict[str, Any]] = []
    i, n = 0, len(html)

    def byte_offset(index: int) -> int:
        return len(html[:index].encode("utf-8"))

    def emit(chars: str) -> None:
        nonlocal pos16
        out.append(chars)
        pos16 += utf16_len(chars)

    while i < n:
        ch = html[i]
        if ch == "&":
            match = _ENTITY_RE.match(html, i)
            decoded = _decode_entity(match.group(1)) if match else None
            if decoded is not None and match is not None:
                emit(decoded)
                i = match.end()
                continue
            if strict:
                shown = match.group(0) if match else "&"
                raise EntityParseError(
                    f'Unsupported HTML entity "{shown}" at byte offset {byte_offset(i)}; '
                    'escape "&" as "&amp;"'
                )
            emit(ch)
            i += 1
            continue
        if ch != "<":
            emit(ch)
            i += 1
            continue

        begin = i
        if i + 1 < n and html[i + 1] == "/":
            end = html.find(">", i + 2)
            if end == -1:
                raise EntityParseError(f"Unclosed end tag at byte offset {byte_offset(begin)}")
            name = html[i + 2 : end].strip().lower()
            if not stack:
                raise EntityParseError(f"Unexpected end tag at byte offset {byte_offset(begin)}")
            if name != stack[-1].name:
                raise EntityParseError(
                    f"Unmatched end tag at byte offset {byte_offset(begin)}, "
                    f'expected "</{stack[-1].name}>", found "</{name}>"'
                )
            _close(stack.pop(), pos16, entities)
            i = end + 1
            continue

        name_match = _TAG_NAME_RE.match(html, i + 1)
        assert name_match is not None  # the pattern matches the empty string
        name = name_match.group(0).lower()
        if name not in _SUPPORTED_TAGS:
            raise EntityParseError(
                f'Unsupported start tag "{name}" at byte offset {byte_offset(begin)}'
            )
        attrs, i = _read_attributes(html, name_match.end(), name, byte_offset(begin))
        if name == "span" and attrs.get("class") != "tg-spoiler":
            raise EntityParseError(
                f'Tag "span" must have class "tg-spoiler" at byte offset {byte_offset(begin)}'
            )
        if name == "tg-emoji" and not attrs.get("emoji-id", "").isdigit():
            raise EntityParseError(
                f'Tag "tg-emoji" must have a numeric "emoji-id" at byte offset {byte_offset(begin)}'
            )
        stack.append(_OpenTag(name, attrs, pos16, byte_offset(begin), len(entities)))

    if stack:
        raise EntityParseError(f'Can\'t find end tag corresponding to start tag "{stack[-1].name}"')
    for entity in entities:
        entity.pop("_language", None)  # a <code class="language-x"> outside <pre>
    entities.sort(key=lambda e: (e["offset"], -e["length"]))
    return "".join(out), entities


def _decode_entity(body: str) -> str | None:
    if body.startswith("#"):
        code = int(body[2:], 16) if body[1:2] in ("x", "X") else int(body[1:])
        if code == 0 or code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
            return None
        return chr(code)
    return _NAMED_ENTITIES.get(body)


def _read_attributes(html: str, i: int, tag: str, begin: int) -> tuple[dict[str, str], int]:
    """Read ``name="value"`` pairs up to ``>``; return them and the index after ``>``."""
    attrs: dict[str, str] = {}
    n = len(html)
    while True:
        while i < n and html[i].isspace():
            i += 1
        if i >= n:
            raise EntityParseError(f"Unclosed start tag at byte offset {begin}")
        if html[i] == ">":
            return attrs, i + 1
        name_match = _ATTR_NAME_RE.match(html, i)
        if name_match is None:
            raise EntityParseError(
                f'Empty attribute name in the tag "{tag}" at byte offset {begin}'
            )
        attr = name_match.group(0).lower()
        i = name_match.end()
        while i < n and html[i].isspace():
            i += 1
        if i >= n or html[i] != "=":
            attrs[attr] = ""  # a bare attribute such as <blockquote expandable>
            continue
        i += 1
        while i < n and html[i].isspace():
            i += 1
        if i >= n:
            raise EntityParseError(f"Unclosed start tag at byte offset {begin}")
        if html[i] in "\"'":
            quote = html[i]
            end = html.find(quote, i + 1)
            if end == -1:
                raise EntityParseError(
                    f'Unclosed attribute value in the tag "{tag}" at byte offset {begin}'
                )
            raw, i = html[i + 1 : end], end + 1
        else:
            start = i
            while i < n and not html[i].isspace() and html[i] != ">":
                i += 1
            raw = html[start:i]
        attrs[attr] = _unescape_attribute(raw)


def _unescape_attribute(raw: str) -> str:
    def replace(match: re.Match[str]) -> str:
        decoded = _decode_entity(match.group(1))
        return match.group(0) if decoded is None else decoded

    return _ENTITY_RE.sub(replace, raw)


def _close(tag: _OpenTag, end16: int, entities: list[dict[str, Any]]) -> None:
    length = end16 - tag.offset
    if length <= 0:
        return  # Telegram drops empty entities
    entity: dict[str, Any] = {"offset": tag.offset, "length": length}
    if tag.name in _SIMPLE_TAGS:
        entity["type"] = _SIMPLE_TAGS[tag.name]
    elif tag.name == "span":
        entity["type"] = "spoiler"
    elif tag.name == "a":
        href = tag.attrs.get("href", "").strip()
        if not href:
            return  # Telegram keeps the text and drops a link without a target
        entity["type"] = "text_link"
        entity["url"] = href
    elif tag.name == "blockquote":
        entity["type"] = "expandable_blockquote" if "expandable" in tag.attrs else "blockquote"
    elif tag.name == "tg-emoji":
        entity["type"] = "custom_emoji"
        entity["custom_emoji_id"] = tag.attrs["emoji-id"]
    else:  # pre: an inner <code class="language-x"> spanning all of it names the language
        entity["type"] = "pre"
        for index in range(len(entities) - 1, tag.entity_index - 1, -1):
            inner = entities[index]
            if (
                inner["type"] == "code"
                and inner["offset"] == tag.offset
                and inner["length"] == length
            ):
                language = inner.pop("_language", "")
                del entities[index]
                if language:
                    entity["language"] = language
                break
    if tag.name == "code":
        css = tag.attrs.get("class", "")
        if css.startswith("language-"):
            entity["_language"] = css.removeprefix("language-")
    entities.append(entity)
