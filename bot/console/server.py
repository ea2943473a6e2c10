"""The console's web server (aiohttp): login, the calendar of briefs, a day's items with a
live per-platform preview, approve and test send, the delivery report, subscribers, the
schedule and the audit log.

Every page but the login page needs a session (a signed cookie); every POST needs the CSRF
token of its session; every response carries a strict Content-Security-Policy (only the
console's own stylesheet and script run). Store and renderer calls run in a thread, so the
bots sharing this event loop are not held up.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hmac
import ipaddress
import json
import logging
import os
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from aiohttp import web
from jinja2 import ChoiceLoader, FileSystemLoader, StrictUndefined
from jinja2.sandbox import SandboxedEnvironment

from bot.console import auth, editing, views
from bot.core import Core
from bot.errors import BriefbotError
from bot.logs import register_secrets, scrub
from bot.platforms import names as platform_names
from bot.render.environment import template_folders

if TYPE_CHECKING:
    from bot.service import Service

log = logging.getLogger("briefbot.console")

SESSION_COOKIE = "briefbot_console"
LOGIN_COOKIE = "briefbot_console_login"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
STATIC_FILES = {
    "console.css": "text/css; charset=utf-8",
    "console.js": "text/javascript; charset=utf-8",
}
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
        "frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}
SESSION_KEY = web.RequestKey("console_session", auth.Session)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True, slots=True)
class Flash:
    """A message shown once on the next page (``undo``: a delete's audit id, with a button)."""

    kind: str  # ok, warn, error
    text: str
    undo: int | None = None


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise web.HTTPNotFound(text="no such day\n") from None


def _item_id(text: str) -> int:
    if not text.isdigit():
        raise web.HTTPNotFound(text="no such item\n")
    return int(text)


def _local_path(target: str) -> str:
    """``target`` if it is a path of this site (after a login), else ``/``: never another
    site (``//evil.example``, ``/\\evil``)."""
    if target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"


def _when(value: dt.datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value else ""


def console_environment(template_dir: Path | None) -> SandboxedEnvironment:
    """The console's templates (``templates/console``; ``[render] template_dir``/console
    overrides), autoescaped HTML in a sandbox."""
    loader = ChoiceLoader(
        [FileSystemLoader(folder) for folder in template_folders("console", template_dir)]
    )
    environment = SandboxedEnvironment(
        loader=loader,
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
    )
    environment.filters["when"] = _when
    environment.filters["pretty"] = lambda value: json.dumps(
        value, ensure_ascii=False, indent=1, sort_keys=True
    )
    environment.tests["http_url"] = views.http_url
    return environment


class ConsoleServer:
    """The console at ``http://host:port/`` (port 0: any free port, see :attr:`url`).

    ``service``: the running service, for test sends (without it the button is not shown).
    ``secret``: the session key (default: :func:`bot.console.auth.load_secret`).
    """

    def __init__(
        self,
        core: Core,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        service: Service | None = None,
        secret: bytes | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.core = core
        self.host = host
        self.port = port
        self.service = service
        key = (
            secret if secret is not None else auth.load_secret(core.settings, environ or os.environ)
        )
        register_secrets([key.decode("utf-8", "replace")])
        self.signer = auth.Signer(key)
        self.session_seconds = core.settings.console.session_hours * 3600
        template_dir = core.settings.render.template_dir
        self._template_dir = Path(template_dir).expanduser() if template_dir else None
        self.environment = console_environment(self._template_dir)
        self.address_throttle = auth.Throttle(auth.ADDRESS_MAX_FAILURES)
        self.name_throttle = auth.Throttle(auth.NAME_MAX_FAILURES)  # names that are no admin
        self._revoked: dict[str, float] = {}  # logged-out sessions until they expire
        self._flashes: dict[str, list[Flash]] = {}
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    # -- lifecycle ---------------------------------------------------------------------------

    def make_app(self) -> web.Application:
        app = web.Application(middlewares=[self._guard], client_max_size=256 * 1024)
        app.on_response_prepare.append(self._headers)
        route = app.router
        route.add_get("/login", self.login_page)
        route.add_post("/login", self.login)
        route.add_post("/logout", self.logout)
        route.add_get("/static/{name}", self.static)
        route.add_get("/", self.calendar_page)
        route.add_get("/day/{date}", self.day_page)
        route.add_post("/day/{date}/items", self.add_item)
        route.add_post("/day/{date}/items/{id}", self.edit_item)
        route.add_post("/day/{date}/items/{id}/move", self.move_item)
        route.add_post("/day/{date}/items/{id}/delete", self.delete_item)
        route.add_post("/day/{date}/undo", self.undo)
        route.add_get("/day/{date}/preview", self.preview)
        route.add_post("/day/{date}/preview", self.preview)
        route.add_post("/day/{date}/approve", self.approve)
        route.add_post("/day/{date}/test-send", self.test_send)
        route.add_get("/day/{date}/deliveries", self.deliveries_page)
        route.add_get("/day/{date}/deliveries.json", self.deliveries_json)
        route.add_get("/subscribers", self.subscribers_page)
        route.add_post("/subscribers/deactivate", self.deactivate)
        route.add_get("/schedule", self.schedule_page)
        route.add_get("/audit", self.audit_page)
        return app

    async def start(self) -> None:
        """Listen on ``host`` only (the port is known once this returns)."""
        # access_log=None: an access log line would carry the query strings people search for
        runner = web.AppRunner(self.make_app(), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self.port = int(runner.addresses[0][1])
        log.info("console served at %s", self.url)

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    # -- the guard: sessions, CSRF, headers --------------------------------------------------

    PUBLIC = frozenset({"/login"})

    @web.middleware
    async def _guard(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        path = request.path
        if path.startswith("/static/"):
            return await handler(request)
        session = await self._session_of(request)
        if session is not None:
            request[SESSION_KEY] = session
        public = path in self.PUBLIC
        if not public and session is None:
            if request.method == "GET" and not path.endswith(".json") and not _wants_json(request):
                query = urlencode({"next": request.rel_url.path_qs})
                raise web.HTTPSeeOther(location=f"/login?{query}")
            raise web.HTTPUnauthorized(
                text=json.dumps({"error": "log in again"}), content_type="application/json"
            )
        if request.method == "POST":
            await self._check_csrf(request, session)
        return await handler(request)

    async def _headers(self, request: web.Request, response: web.StreamResponse) -> None:
        response.headers.update(SECURITY_HEADERS)
        if "Cache-Control" not in response.headers:
            response.headers["Cache-Control"] = "no-store"

    async def _session_of(self, request: web.Request) -> auth.Session | None:
        value = request.cookies.get(SESSION_COOKIE)
        if not value:
            return None
        now = time.time()
        session = self.signer.read_session(value, now)
        if session is None or self._revoked.get(session.sid, 0) > now:
            return None
        # the admin still exists and has the password the session was given for
        current = await asyncio.to_thread(
            auth.admin_fingerprint, self.core.store, self.signer.secret, session.name
        )
        if current is None or not hmac.compare_digest(current, session.fingerprint):
            return None
        return session

    async def _check_csrf(self, request: web.Request, session: auth.Session | None) -> None:
        # a browser says where a request comes from; another site's is refused outright
        if request.headers.get("Sec-Fetch-Site", "same-origin") == "cross-site":
            raise _forbidden("a request from another site")
        token = request.headers.get(CSRF_HEADER, "")
        if not token:
            form = await request.post()
            value = form.get(CSRF_FIELD, "")
            token = value if isinstance(value, str) else ""
        if session is not None:
            bound = session.sid
        else:  # the login form: bound to the random value of its own cookie
            nonce = request.cookies.get(LOGIN_COOKIE, "")
            if not nonce or not nonce.isascii():
                raise _forbidden("the login form expired")
            bound = "login:" + nonce
        if not token or not self.signer.check_csrf(bound, token):
            raise _forbidden("the form expired or came from elsewhere")

    def csrf(self, request: web.Request) -> str:
        return self.signer.csrf_token(request[SESSION_KEY].sid)

    # -- rendering ---------------------------------------------------------------------------

    def flash(self, request: web.Request, kind: str, text: str, undo: int | None = None) -> None:
        session = request.get(SESSION_KEY)
        if session is not None:
            flashes = self._flashes.setdefault(session.sid, [])
            flashes.append(Flash(kind, scrub(text), undo))
            del flashes[:-10]
            while len(self._flashes) > 1000:  # sessions that never came back for theirs
                del self._flashes[next(iter(self._flashes))]

    def page(self, request: web.Request, template: str, **context: Any) -> web.Response:
        session = request.get(SESSION_KEY)
        if session is not None:
            context.setdefault("admin", session.name)
            context.setdefault("csrf", self.csrf(request))
            context.setdefault("flashes", self._flashes.pop(session.sid, []))
        context.setdefault("admin", None)
        context.setdefault("csrf", "")
        context.setdefault("flashes", [])
        context.setdefault("nav", "")
        html = self.environment.get_template(template).render(**context)
        return web.Response(text=html, content_type="text/html", charset="utf-8")

    def actor(self, request: web.Request) -> str:
        return f"console:{request[SESSION_KEY].name}"

    def _platform(self, value: str | None) -> str:
        known = platform_names()
        if value in known:
            return str(value)
        editors = self.core.settings.editors.platform
        if editors in known:
            return editors
        if self.service is not None and self.service.platforms:
            return next(iter(self.service.platforms))
        return known[0]

    # -- login -------------------------------------------------------------------------------

    async def login_page(self, request: web.Request) -> web.StreamResponse:
        if request.get(SESSION_KEY) is not None:
            raise web.HTTPSeeOther(location=_local_path(request.query.get("next", "/")))
        return self._login_form(request, "", request.query.get("next", "/"))

    def _login_form(
        self, request: web.Request, error: str, after: str, *, status: int = 200, name: str = ""
    ) -> web.Response:
        nonce = request.cookies.get(LOGIN_COOKIE, "")
        if not nonce or not nonce.isascii() or len(nonce) > 64:
            nonce = secrets.token_urlsafe(16)
        response = self.page(
            request,
            "login.html",
            csrf=self.signer.csrf_token("login:" + nonce),
            error=error,
            next=_local_path(after),
            name=name,
        )
        response.set_status(status)
        response.set_cookie(
            LOGIN_COOKIE,
            nonce,
            max_age=3600,
            path="/login",
            httponly=True,
            samesite="Strict",
            secure=_https(request) or None,
        )
        return response

    async def login(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        name = str(form.get("name", "")).strip()
        password = str(form.get("password", ""))
        after = str(form.get("next", "/"))
        address = client_address(request)
        now = time.time()
        locked = "Too many failed logins: try again in 15 minutes."
        if self.address_throttle.locked(address, now) or self.name_throttle.locked(name, now):
            log.warning("console login refused: too many failures address=%s", address)
            return self._login_form(request, locked, after, status=429, name=name)
        result = await asyncio.to_thread(
            auth.attempt_login,
            self.core.store,
            self.signer.secret,
            name,
            password,
            dt.datetime.now(dt.UTC),
        )
        if result.outcome is auth.LoginOutcome.OK:
            # the address's failures stay counted: logging in to one's own account must not
            # reset the count of guesses at others'
            cookie, _session = self.signer.new_session(
                name, result.fingerprint, now + self.session_seconds
            )
            await asyncio.to_thread(self.core.store.audit, f"console:{name}", "login", name)
            log.info("console login name=%s address=%s", name, address)
            response = see_other(_local_path(after))
            response.set_cookie(
                SESSION_COOKIE,
                cookie,
                max_age=int(self.session_seconds),
                path="/",
                httponly=True,
                samesite="Strict",
                secure=_https(request) or None,
            )
            response.del_cookie(LOGIN_COOKIE, path="/login")
            return response
        # the name is logged only when it is an admin's: a password typed into the name field
        # must not end up in a log
        log.warning(
            "console login failed address=%s%s",
            address,
            f" name={name}" if result.known else "",
        )
        address_locked = self.address_throttle.failure(address, now)
        name_locked = not result.known and self.name_throttle.failure(name, now)
        if result.outcome is auth.LoginOutcome.LOCKED or address_locked or name_locked:
            return self._login_form(request, locked, after, status=429, name=name)
        return self._login_form(request, "Wrong name or password.", after, status=401, name=name)

    async def logout(self, request: web.Request) -> web.StreamResponse:
        session = request[SESSION_KEY]
        now = time.time()
        self._revoked = {sid: t for sid, t in self._revoked.items() if t > now}
        self._revoked[session.sid] = session.expires
        self._flashes.pop(session.sid, None)
        response = see_other("/login")
        response.del_cookie(SESSION_COOKIE, path="/")
        return response

    async def static(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        if name not in STATIC_FILES:
            raise web.HTTPNotFound()
        for folder in template_folders("console", self._template_dir):
            path = folder / name
            if path.is_file():
                return web.FileResponse(
                    path, headers={"Content-Type": STATIC_FILES[name], "Cache-Control": "no-cache"}
                )
        raise web.HTTPNotFound()

    # -- calendar and day --------------------------------------------------------------------

    async def calendar_page(self, request: web.Request) -> web.StreamResponse:
        until = request.query.get("until")
        end = _date(until) if until else None
        data, runs = await asyncio.to_thread(
            lambda: (views.calendar(self.core, end), views.next_runs(self.core))
        )
        return self.page(
            request,
            "calendar.html",
            nav="calendar",
            calendar=data,
            runs=runs[:5],
            require_approval=self.core.settings.schedule.require_approval,
        )

    async def day_page(self, request: web.Request) -> web.StreamResponse:
        date = _date(request.match_info["date"])
        platform = self._platform(request.query.get("platform"))

        def gather() -> dict[str, Any]:
            stored = self.core.store.brief_status(date)
            brief = views.current_brief(self.core, date)
            from bot.editorial import content_hash

            return {
                "state": views.day_state(stored, brief),
                # what the editor sees: Approve approves this content, not a later change
                "content": content_hash(brief) if brief is not None else "",
                "items": views.day_items(self.core, date),
                "preview": views.preview(self.core, date, platform),
                "deliveries": views.delivery_report(self.core, date)["counts"],
                "history": views.audit_log(self.core, 20, subject=date.isoformat()),
            }

        context = await asyncio.to_thread(gather)
        editors = self.core.settings.editors
        return self.page(
            request,
            "day.html",
            nav="calendar",
            date=date,
            weekday=views.WEEKDAYS[date.weekday()],
            platform=platform,
            platforms=platform_names(),
            can_test_send=self.service is not None,
            editors=f"{editors.platform}:{editors.chat}"
            if editors.platform and editors.chat
            else "",
            item_links=views.item_links,
            summary=views.audit_summary,
            **context,
        )

    async def _form(self, request: web.Request) -> dict[str, str]:
        form = await request.post()
        return {key: value for key, value in form.items() if isinstance(value, str)}

    def _back(self, date: dt.date, fields: Mapping[str, str], anchor: str = "") -> web.Response:
        query = ""
        if fields.get("platform") in platform_names():
            query = "?platform=" + quote(fields["platform"])
        return see_other(f"/day/{date.isoformat()}{query}{anchor}")

    async def _change(
        self,
        request: web.Request,
        date: dt.date,
        fields: Mapping[str, str],
        change: Callable[[], editing.Change],
        anchor: str = "",
    ) -> web.StreamResponse:
        try:
            done = await asyncio.to_thread(change)
        except BriefbotError as exc:
            self.flash(request, "error", str(exc))
        else:
            self.flash(request, "ok", done.message, done.undo_id)
            for warning in done.warnings:
                self.flash(request, "warn", warning)
        return self._back(date, fields, anchor)

    async def add_item(self, request: web.Request) -> web.StreamResponse:
        date = _date(request.match_info["date"])
        fields = await self._form(request)
        form = editing.ItemForm.from_fields(fields)
        actor = self.actor(request)
        return await self._change(
            request, date, fields, lambda: editing.add_item(self.core, date, form, actor), "#items"
        )

    async def edit_item(self, request: web.Request) -> web.StreamResponse:
        date = _date(request.match_info["date"])
        item_id = _item_id(request.match_info["id"])
        fields = await self._form(request)
        form = editing.ItemForm.from_fields(fields)
        actor = self.actor(request)
        return await self._change(
            request,
            date,
            fields,
            lambda: editing.edit_item(self.core, date, item_id, form, actor),
            f"#item-{item_id}",
        )

    async def move_item(self, request: web.Request) -> web.StreamResponse:
        date = _date(request.match_info["date"])
        item_id = _item_id(request.match_info["id"])
        fields = await self._form(request)
        offset = {"up": -1, "down": 1}.get(fields.get("direction", ""), 0)
        actor = self.actor(request)
        return await self._change(
            request,
            date,
            fields,
            lambda: editing.move_item(self.core, date, item_id, offset, actor),
            f"#item-{item_id}",
        )

    async def delete_item(self, request: web.Request) -> web.StreamResponse:
        date = _date(request.match_info["date"])
        item_id = _item_id(request.match_info["id"])
        fields = await self._form(request)
        actor = self.actor(request)
        return await self._change(
            request,
            date,
            fields,
            lambda: editing.delete_item(self.core, date, item_id, actor),
            "#items",
        )

    async def undo(self, request: web.Request) -> web.StreamResponse:
        date = _date(request.match_info["date"])
        fields = await self._form(request)
        undo_id = _item_id(fields.get("undo", ""))
        actor = self.actor(request)
        return await self._change(
            request,
            date,
            fields,
            lambda: editing.undo_delete(self.core, date, undo_id, actor),
            "#items",
        )

    async def preview(self, request: web.Request) -> web.StreamResponse:
        """The preview as JSON; a POST carries an edit form's unsaved content (``item``: its
        id, or empty for a new item) to show it before it is saved."""
        date = _date(request.match_info["date"])
        draft: tuple[int | None, editing.ItemForm] | None = None
        if request.method == "POST":
            fields = await self._form(request)
            platform = self._platform(fields.get("platform"))
            if "title" in fields:
                item = fields.get("item", "")
                draft = (
                    int(item) if item.isdigit() else None,
                    editing.ItemForm.from_fields(fields),
                )
        else:
            platform = self._platform(request.query.get("platform"))
        shown = await asyncio.to_thread(views.preview, self.core, date, platform, draft=draft)
        return web.json_response(shown.as_json(), dumps=_dumps)

    async def approve(self, request: web.Request) -> web.StreamResponse:
        from bot.editorial import approve

        date = _date(request.match_info["date"])
        fields = await self._form(request)
        actor = self.actor(request)
        try:
            done = await asyncio.to_thread(
                approve, self.core, date, actor, seen=fields.get("content") or None
            )
        except BriefbotError as exc:
            self.flash(request, "error", str(exc))
        else:
            self.flash(request, "ok", f"approved by {done.approved_by}")
        return self._back(date, fields)

    async def test_send(self, request: web.Request) -> web.StreamResponse:
        date = _date(request.match_info["date"])
        fields = await self._form(request)
        if self.service is None:
            self.flash(request, "error", "test sends need the running service (briefbot run)")
            return self._back(date, fields)
        try:
            sent = await self.service.test_send(date, self.actor(request))
        except BriefbotError as exc:
            self.flash(request, "error", f"test send failed: {exc}")
        else:
            editors = self.core.settings.editors
            self.flash(
                request,
                "ok",
                f"test send: {sent} message(s) to the editors' chat "
                f"{editors.platform}:{editors.chat}",
            )
        return self._back(date, fields)

    # -- deliveries --------------------------------------------------------------------------

    async def deliveries_page(self, request: web.Request) -> web.StreamResponse:
        date = _date(request.match_info["date"])
        report = await asyncio.to_thread(views.delivery_report, self.core, date)
        return self.page(request, "deliveries.html", nav="calendar", date=date, report=report)

    async def deliveries_json(self, request: web.Request) -> web.StreamResponse:
        date = _date(request.match_info["date"])
        report = await asyncio.to_thread(views.delivery_report, self.core, date)
        return web.json_response(report, dumps=_dumps)

    # -- subscribers, schedule, audit --------------------------------------------------------

    async def subscribers_page(self, request: web.Request) -> web.StreamResponse:
        query = request.query.get("q", "")[:200]
        platform = request.query.get("platform", "")
        platform = platform if platform in platform_names() else ""
        found = await asyncio.to_thread(views.find_subscribers, self.core, query, platform)
        return self.page(
            request,
            "subscribers.html",
            nav="subscribers",
            query=query,
            platform=platform,
            platforms=platform_names(),
            subscribers=found,
        )

    async def deactivate(self, request: web.Request) -> web.StreamResponse:
        fields = await self._form(request)
        platform, chat_id = fields.get("platform", ""), fields.get("chat_id", "")
        actor = self.actor(request)
        done = await asyncio.to_thread(
            views.deactivate_subscriber, self.core, platform, chat_id, actor
        )
        if done:
            self.flash(request, "ok", f"deactivated {platform}:{chat_id}")
        else:
            self.flash(request, "error", f"{platform}:{chat_id} is not an active subscriber")
        query = urlencode({"q": fields.get("q", ""), "platform": fields.get("filter", "")})
        return see_other(f"/subscribers?{query}")

    async def schedule_page(self, request: web.Request) -> web.StreamResponse:
        runs = await asyncio.to_thread(views.next_runs, self.core)
        return self.page(
            request,
            "schedule.html",
            nav="schedule",
            runs=runs,
            require_approval=self.core.settings.schedule.require_approval,
            timezone=self.core.settings.schedule.timezone,
        )

    async def audit_page(self, request: web.Request) -> web.StreamResponse:
        entries = await asyncio.to_thread(views.audit_log, self.core, 200)
        return self.page(
            request, "audit.html", nav="audit", entries=entries, summary=views.audit_summary
        )


def see_other(location: str) -> web.Response:
    """A redirect after a POST (or to the login page): the next request is a GET."""
    return web.Response(status=303, headers={"Location": location})


def client_address(request: web.Request) -> str:
    """Who is logging in, for the per-address throttle: the peer, or, when the peer is a
    reverse proxy on this host, the address it saw (the last ``X-Forwarded-For`` entry, the
    one it appended). Anyone else's ``X-Forwarded-For`` is not believed."""
    peer = request.remote or "unknown"
    try:
        local = ipaddress.ip_address(peer).is_loopback
    except ValueError:
        local = False
    forwarded = request.headers.get("X-Forwarded-For", "")
    if local and forwarded:
        return forwarded.split(",")[-1].strip()[:64] or peer
    return peer


def _https(request: web.Request) -> bool:
    """Whether the browser reached us over https: directly, or through a reverse proxy that
    says so (``X-Forwarded-Proto``). Only the cookie's Secure flag depends on it, which a
    forged header can only take away from the forger's own login."""
    if request.secure:
        return True
    forwarded = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
    return forwarded == "https"


def _wants_json(request: web.Request) -> bool:
    return "application/json" in request.headers.get("Accept", "")


def _dumps(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False)


def _forbidden(reason: str) -> web.HTTPForbidden:
    return web.HTTPForbidden(
        text=f"403: {reason}. Reload the page and try again.\n", content_type="text/plain"
    )


async def start_console(service: Service) -> ConsoleServer:
    """Serve the console at ``[console] listen`` for a running service (``briefbot run``)."""
    from bot.config import parse_listen

    host, port = parse_listen(service.core.settings.console.listen)
    server = ConsoleServer(service.core, host=host, port=port, service=service)
    await server.start()
    return server
