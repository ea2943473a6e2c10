"""Serve the built archive over HTTP (aiohttp), reading whichever build the folder shows now.

The folder is resolved on every request: after :func:`bot.site.build_site` swaps a new build
in, the next request reads it, and one in flight finishes on the old one (kept one build
long). Only GET and HEAD, only files inside the folder: ``..``, dot files (the build marker)
and anything resolving outside are not found.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote

from aiohttp import web

# By file name first (the feeds), then by suffix; anything else is a download.
CONTENT_TYPES_BY_NAME = {
    "feed.xml": "application/rss+xml; charset=utf-8",
    "atom.xml": "application/atom+xml; charset=utf-8",
    "feed.json": "application/feed+json; charset=utf-8",
}
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".json": "application/json; charset=utf-8",
    ".xml": "application/xml; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".webp": "image/webp",
}
# The pages load only their own stylesheet and scripts: even markup that got into a page
# could not run an inline script or load one from elsewhere.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "strict-origin-when-cross-origin",
    # pages change with each publish: caches revalidate (Last-Modified / 304)
    "Cache-Control": "no-cache",
}


def content_type(path: Path) -> str:
    return CONTENT_TYPES_BY_NAME.get(path.name) or CONTENT_TYPES.get(
        path.suffix.lower(), "application/octet-stream"
    )


@dataclass(frozen=True, slots=True)
class Found:
    """What a request path leads to: a file to send, a redirect (a folder asked for without
    its trailing slash), or nothing."""

    file: Path | None = None
    redirect: str | None = None


def locate(directory: Path, raw_path: str) -> Found:
    """The file ``raw_path`` (percent-encoded, as sent) names inside ``directory``."""
    path = unquote(raw_path)
    if "\x00" in path or "\\" in path:
        return Found()
    parts = [part for part in path.split("/") if part]
    # ".." and "." never name a file of the site, and dot files (the build marker) are private
    if any(part.startswith(".") for part in parts):
        return Found()
    root = directory.resolve()
    target = root.joinpath(*parts).resolve()
    if not target.is_relative_to(root):
        return Found()
    if target.is_dir():
        if not path.endswith("/"):
            # relative links on the page need the slash; the location is rebuilt from the
            # checked parts, so "//evil.example" cannot become a redirect elsewhere
            return Found(redirect="/" + "".join(quote(part) + "/" for part in parts))
        target = target / "index.html"
    return Found(file=target) if target.is_file() else Found()


class SiteServer:
    """The archive at ``http://host:port/`` (port 0: any free port, see :attr:`url`)."""

    def __init__(self, directory: Path, host: str = "127.0.0.1", port: int = 0) -> None:
        self.directory = Path(directory)
        self.host = host
        self.port = port
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    async def start(self) -> None:
        """Listen on ``host`` only (the port is known once this returns)."""
        app = web.Application()
        app.router.add_get("/{tail:.*}", self._serve)  # HEAD too
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        address = runner.addresses[0]
        self.port = int(address[1])

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def _serve(self, request: web.Request) -> web.StreamResponse:
        found = locate(self.directory, request.rel_url.raw_path)
        if found.redirect is not None:
            location = found.redirect
            if request.rel_url.raw_query_string:
                location += "?" + request.rel_url.raw_query_string
            raise web.HTTPMovedPermanently(location=location)
        if found.file is None:
            return self._not_found()
        return web.FileResponse(
            found.file,
            headers={"Content-Type": content_type(found.file), **SECURITY_HEADERS},
        )

    def _not_found(self) -> web.StreamResponse:
        page = self.directory / "404.html"
        if page.is_file():
            return web.FileResponse(
                page,
                status=404,
                headers={"Content-Type": CONTENT_TYPES[".html"], **SECURITY_HEADERS},
            )
        return web.Response(status=404, text="not found\n", headers=SECURITY_HEADERS)
