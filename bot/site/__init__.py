"""The public archive: published briefs as a static site with RSS, Atom and JSON feeds.

:func:`build_site` writes it (see :func:`public_dates` for what is public);
:class:`bot.site.server.SiteServer` serves the folder (imported from there: it needs aiohttp).
"""

from bot.config import parse_listen
from bot.site.build import (
    SiteReport,
    build_site,
    public_dates,
    resolve_base_url,
    site_out_dir,
)

__all__ = [
    "SiteReport",
    "build_site",
    "parse_listen",
    "public_dates",
    "resolve_base_url",
    "site_out_dir",
]
