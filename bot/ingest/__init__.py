"""Read brief content (Markdown, plain-text archives, RSS/Atom feeds) into dated items."""

from bot.ingest.archive import parse_archive
from bot.ingest.document import ParsedDocument
from bot.ingest.feed import fetch_feed, parse_feed
from bot.ingest.files import SAMPLES_DIR, SUPPORTED_SUFFIXES, discover, parse_file
from bot.ingest.markdown import parse_markdown

__all__ = [
    "SAMPLES_DIR",
    "SUPPORTED_SUFFIXES",
    "ParsedDocument",
    "discover",
    "fetch_feed",
    "parse_archive",
    "parse_feed",
    "parse_file",
    "parse_markdown",
]
