"""The editors' web console through real HTTP (httpx against the aiohttp server on
127.0.0.1): logins, sessions and CSRF; editing a day's items with the audit and the workflow
following; the live preview; approve and test send; deliveries, subscribers, schedule; and
the ``console`` verb."""

from __future__ import annotations

import argparse
import base64
import dataclasses
import datetime as dt
import html
import io
import json
import logging
import os
import re
import socket
import stat
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from sqlalchemy import update

from bot.config import load_settings
from bot.console import auth, editing
from bot.console.cli import add_parser
from bot.console.server import ConsoleServer, start_console
from bot.core import Core, build_core
from bot.domain import BriefState, DeliveryStatus, Item, Link, Target, TargetKind
from bot.editorial import approve, mark_published, status
from bot.errors import ConfigError, UsageError
from bot.ingest import SAMPLES_DIR
from bot.ingest.importer import import_paths
from bot.sandbox.wecom_robot import WecomRobotServer
from bot.service import build_service, start_platforms
from bot.store.models import ConsoleAdminRow, SubscriberRow

REPO = Path(__file__).resolve().parent.parent
DAY = dt.date(2026, 11, 27)
D = DAY.isoformat()
ADMIN = "alice"
PASSWORD = "correct horse battery staple"
SECRET = b"test-console-secret-0123456789abcdef"
HOSTILE_TITLE = '<img src=x onerror="window.__pwned=1">恶意标题 <b>粗体</b>'


def make_core(tmp_path: Path, toml: str = "", env: Mapping[str, str] | None = None) -> Core:
    config = tmp_path / "briefbot.toml"
    config.write_text(f'[store]\ndata_dir = "{tmp_path / "data"}"\n{toml}', encoding="utf-8")
    settings = load_settings(config, environ=dict(env or {}))
    core = build_core(settings, database_url=f"sqlite:///{tmp_path / 'briefbot.db'}")
    import_paths(core.store, [SAMPLES_DIR])
    auth.add_admin(core.store, ADMIN, PASSWORD)
    return core


@dataclasses.dataclass
class Console:
    core: Core
    server: ConsoleServer

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.server.url, timeout=10)


@pytest.fixture
async def console(tmp_path: Path) -> AsyncIterator[Console]:
    core = make_core(tmp_path)
    server = ConsoleServer(core, host="127.0.0.1", port=0, secret=SECRET)
    await server.start()
    try:
        yield Console(core, server)
    finally:
        await server.stop()
        core.store.close()


def shown(page: httpx.Response) -> str:
    """A page's text as a reader sees it (entities such as &#34; decoded)."""
    return html.unescape(page.text)


def csrf_of(markup: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', markup)
    assert found, "the page has no CSRF token"
    return found.group(1)


async def login(
    client: httpx.AsyncClient, name: str = ADMIN, password: str = PASSWORD, after: str = "/"
) -> httpx.Response:
    page = await client.get("/login")
    assert page.status_code == 200
    return await client.post(
        "/login",
        data={"csrf_token": csrf_of(page.text), "name": name, "password": password, "next": after},
    )


@asynccontextmanager
async def logged_in(
    console: Console, password: str = PASSWORD
) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    """A client with a session, and the session's CSRF token."""
    async with console.client() as client:
        answer = await login(client, password=password)
        assert answer.status_code == 303, answer.text
        page = await client.get("/")
        assert page.status_code == 200
        yield client, csrf_of(page.text)


def item_ids(core: Core, date: dt.date = DAY) -> list[int]:
    return [e.id for e in editing.items_with_ids(core, date)]


def form_of(item: Item, **changes: str) -> dict[str, str]:
    fields = dataclasses.asdict(editing.ItemForm.of(item))
    fields.update(changes)
    return fields


# -- logins, sessions, CSRF ---------------------------------------------------------------


async def test_every_page_needs_a_login_and_every_answer_has_the_security_headers(
    console: Console,
) -> None:
    async with console.client() as client:
        for path in ("/", f"/day/{D}", "/subscribers", "/schedule", "/audit"):
            answer = await client.get(path)
            assert answer.status_code == 303, path
            assert answer.headers["location"].startswith("/login?next=")
        answer = await client.get(f"/day/{D}/deliveries.json")
        assert answer.status_code == 401 and answer.json() == {"error": "log in again"}
        answer = await client.get(f"/day/{D}/preview?platform=wecom")
        assert answer.status_code == 303
        # a POST without a session changes nothing
        answer = await client.post(f"/day/{D}/approve", data={"csrf_token": "x"})
        assert answer.status_code == 401
        assert console.core.store.brief_status(DAY) is None
        login_page = await client.get("/login")
        css = await client.get("/static/console.css")
        missing = await client.get("/static/briefbot.toml")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert missing.status_code == 404
    for answer in (login_page, css, missing):
        headers = answer.headers
        csp = headers["content-security-policy"]
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["referrer-policy"] == "no-referrer"
    assert login_page.headers["cache-control"] == "no-store"
    # nothing is loaded from elsewhere (works offline, no CDN)
    assert not re.search(r'(src|href)="(https?:)?//', login_page.text)


async def test_login_sets_a_strict_session_cookie_and_goes_where_it_was_asked(
    console: Console,
) -> None:
    async with console.client() as client:
        answer = await login(client, after=f"/day/{D}")
        assert answer.status_code == 303 and answer.headers["location"] == f"/day/{D}"
        cookie = next(
            value
            for value in answer.headers.get_list("set-cookie")
            if value.startswith("briefbot_console=")
        )
        attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")}
        assert {"httponly", "samesite", "max-age", "path"} <= attributes
        assert "samesite=strict" in cookie.lower()
        assert "secure" not in attributes  # plain http on loopback; https requests get it
        assert "max-age=43200" in cookie.lower()  # session_hours = 12
        page = await client.get(f"/day/{D}")
        assert page.status_code == 200 and "开源推理引擎 FlowServe" in shown(page)
        assert "log out alice" in shown(page)
        # never to another site after a login
        await client.post("/logout", data={"csrf_token": csrf_of(page.text)})
        answer = await login(client, after="//evil.example/")
        assert answer.headers["location"] == "/"
        audit = [e for e in console.core.store.audit_entries() if e.action == "login"]
        assert [e.actor for e in audit] == ["console:alice", "console:alice"]
    # behind a reverse proxy that terminates TLS, the cookie is Secure
    async with console.client() as client:
        page = await client.get("/login")
        answer = await client.post(
            "/login",
            data={"csrf_token": csrf_of(page.text), "name": ADMIN, "password": PASSWORD},
            headers={"X-Forwarded-Proto": "https"},
        )
        cookie = answer.headers["set-cookie"].split(", briefbot_console_login")[0]
        assert cookie.startswith("briefbot_console=") and "; Secure" in cookie


async def test_a_wrong_password_is_refused_and_nothing_secret_is_logged(
    console: Console, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="briefbot")
    async with console.client() as client:
        answer = await login(client, password="wrong password 1")
        assert answer.status_code == 401 and "Wrong name or password." in answer.text
        assert "briefbot_console=" not in answer.headers.get("set-cookie", "")
        # an unknown name gets the same answer (names are not told apart from passwords)
        unknown = await login(client, name="mallory", password="wrong password 2")
        assert unknown.status_code == 401 and "Wrong name or password." in unknown.text
        # someone typing the password into the name field: it is not logged
        await login(client, name=PASSWORD.replace(" ", ""), password="x")
        answer = await login(client)
        assert answer.status_code == 303
        cookie = answer.cookies["briefbot_console"]
        assert (await client.get("/")).status_code == 200
    # what briefbot logged (the HTTP client's own debug log shows headers: not ours)
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("briefbot"))
    assert "wrong password" not in ours and PASSWORD not in ours
    assert PASSWORD.replace(" ", "") not in ours and cookie not in ours
    assert "console login failed" in ours and "name=mallory" not in ours


async def test_five_failures_lock_the_name_for_fifteen_minutes(console: Console) -> None:
    async with console.client() as client:
        for attempt in range(auth.NAME_MAX_FAILURES - 1):
            answer = await login(client, password=f"not it {attempt}")
            assert answer.status_code == 401
        answer = await login(client, password="not it, the fifth")
        assert answer.status_code == 429 and "Too many failed logins" in answer.text
        # locked: even the right password is refused, and not checked
        answer = await login(client)
        assert answer.status_code == 429 and "briefbot_console=" not in str(answer.headers)
        [admin] = auth.list_admins(console.core.store)
        assert admin.locked_until is not None
        left = admin.locked_until - dt.datetime.now(dt.UTC)
        assert dt.timedelta(minutes=14) < left <= dt.timedelta(minutes=15)
        assert [e.action for e in console.core.store.audit_entries(1)] == ["login_locked"]
        # fifteen minutes later (the lock is in the store: a restart does not lift it)
        with console.core.store.session() as s:
            s.execute(
                update(ConsoleAdminRow).values(
                    locked_until=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
                )
            )
        answer = await login(client)
        assert answer.status_code == 303
    [admin] = auth.list_admins(console.core.store)
    assert admin.failed_logins == 0 and admin.locked_until is None


async def test_many_failures_from_one_address_lock_that_address(console: Console) -> None:
    async with console.client() as client:
        for attempt in range(auth.ADDRESS_MAX_FAILURES - 1):
            answer = await login(client, name=f"guess{attempt}", password="nope nope")
            assert answer.status_code == 401
        answer = await login(client, name="guess-last", password="nope nope")
        assert answer.status_code == 429
        answer = await login(client)  # the right name and password, from that address
        assert answer.status_code == 429
        # behind a reverse proxy on this host, each browser is counted by the address the
        # proxy saw, so one guesser does not lock everyone out
        page = await client.get("/login")
        answer = await client.post(
            "/login",
            data={"csrf_token": csrf_of(page.text), "name": ADMIN, "password": PASSWORD},
            headers={"X-Forwarded-For": "203.0.113.9, 198.51.100.7"},
        )
        assert answer.status_code == 303
    # the name itself is not locked: the store was not touched by guesses at other names
    [admin] = auth.list_admins(console.core.store)
    assert admin.locked_until is None and admin.failed_logins == 0


async def test_a_post_without_its_sessions_csrf_token_is_refused(console: Console) -> None:
    async with (
        logged_in(console) as (client, token),
        logged_in(console) as (other, other_token),
    ):
        url = f"/day/{D}/approve"
        for data, headers in (
            ({}, {}),
            ({"csrf_token": ""}, {}),
            ({"csrf_token": "forged"}, {}),
            ({"csrf_token": other_token}, {}),  # another session's token
            ({}, {"X-CSRF-Token": other_token}),
            ({"csrf_token": token}, {"Sec-Fetch-Site": "cross-site"}),
        ):
            answer = await client.post(url, data=data, headers=headers)
            assert answer.status_code == 403, (data, headers)
            assert "content-security-policy" in answer.headers
        assert console.core.store.brief_status(DAY) is None
        # the login form has its own token, bound to its own cookie
        fresh = console.client()
        async with fresh:
            answer = await fresh.post(
                "/login", data={"csrf_token": token, "name": ADMIN, "password": PASSWORD}
            )
            assert answer.status_code == 403
        answer = await client.post(url, data={"csrf_token": token})
        assert answer.status_code == 303
        answer = await other.post(f"/day/{D}/preview", headers={"X-CSRF-Token": other_token})
        assert answer.status_code == 200
    assert status(console.core, DAY).state is BriefState.APPROVED


def _encode(data: dict[str, object]) -> str:
    raw = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


async def test_a_tampered_expired_or_revoked_session_cookie_is_refused(console: Console) -> None:
    async with logged_in(console) as (client, _token):
        cookie = client.cookies["briefbot_console"]
        payload, signature = cookie.split(".")
        data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        auth.add_admin(console.core.store, "bob", "another long password")
        signer = auth.Signer(SECRET)
        bob_print = auth.admin_fingerprint(console.core.store, SECRET, "bob")
        assert bob_print is not None
        forged = {
            "someone else": f"{_encode({**data, 'n': 'bob'})}.{signature}",
            "longer": f"{_encode({**data, 'e': data['e'] + 10**6})}.{signature}",
            "bad signature": f"{payload}.{signature[:-2]}AA",
            "no signature": payload,
            "other key": auth.Signer(b"x" * 40).new_session(ADMIN, data["f"], time.time() + 60)[0],
            "expired": signer.new_session("bob", bob_print, time.time() - 1)[0],
            "garbage": "not a cookie at all",
        }
        for what, value in forged.items():
            async with console.client() as attacker:
                attacker.cookies.set("briefbot_console", value)
                answer = await attacker.get("/")
                assert answer.status_code == 303, what
                answer = await attacker.post(
                    f"/day/{D}/approve", data={"csrf_token": signer.csrf_token(data["s"])}
                )
                assert answer.status_code in (401, 403), what
        assert (await client.get("/")).status_code == 200
        # a new password ends the sessions given before it
        auth.add_admin(console.core.store, ADMIN, "a brand new password", reset=True)
        assert (await client.get("/")).status_code == 303
    # and a logout ends that session, even if its cookie is replayed
    async with logged_in(console, "a brand new password") as (again, again_token):
        cookie = again.cookies["briefbot_console"]
        answer = await again.post("/logout", data={"csrf_token": again_token})
        assert answer.status_code == 303 and answer.headers["location"] == "/login"
        async with console.client() as replay:
            replay.cookies.set("briefbot_console", cookie)
            assert (await replay.get("/")).status_code == 303
    assert console.core.store.brief_status(DAY) is None


# -- editing ------------------------------------------------------------------------------


async def test_an_edit_is_audited_shows_in_the_preview_and_unapproves_the_brief(
    console: Console,
) -> None:
    core = console.core
    approve(core, DAY, "cli")
    first = editing.items_with_ids(core, DAY)[0]
    async with logged_in(console) as (client, token):
        before = (await client.get(f"/day/{D}/preview?platform=wecom")).json()
        assert "开源推理引擎 FlowServe" in before["parts"][0]["text"]
        # the unsaved form, previewed as it is typed
        draft = await client.post(
            f"/day/{D}/preview",
            headers={"X-CSRF-Token": token},
            data={
                "platform": "wecom",
                "item": str(first.id),
                **form_of(first.item, title="草稿标题"),
            },
        )
        assert draft.json()["draft"] is True and "草稿标题" in draft.json()["parts"][0]["text"]
        assert core.store.items_on(DAY)[0].title == first.item.title  # nothing saved

        answer = await client.post(
            f"/day/{D}/items/{first.id}",
            data={
                "csrf_token": token,
                "platform": "wecom",
                **form_of(first.item, title="推理引擎 FlowServe 新版发布"),
            },
        )
        assert answer.status_code == 303
        assert answer.headers["location"] == f"/day/{D}?platform=wecom#item-{first.id}"
        page = await client.get(answer.headers["location"])
        after = (await client.get(f"/day/{D}/preview?platform=wecom")).json()

    assert core.store.items_on(DAY)[0].title == "推理引擎 FlowServe 新版发布"
    [entry] = [e for e in core.store.audit_entries() if e.action == "edit_item"]
    assert entry.actor == "console:alice" and entry.subject == D
    assert entry.detail["changed"] == ["title"]
    assert entry.detail["before"]["title"] == first.item.title  # type: ignore[index]
    assert entry.detail["after"]["title"] == "推理引擎 FlowServe 新版发布"  # type: ignore[index]
    # approval was given to the old content: a draft again, and the editor is told
    current = status(core, DAY)
    assert current.state is BriefState.DRAFT and current.approved_by == "cli"
    assert "its content changed, so it is a draft again" in shown(page)
    assert "changed since cli approved it" in shown(page)
    # the preview is the real renderer's, with the per-message split and sizes
    [part] = after["parts"]
    assert "推理引擎 FlowServe 新版发布" in part["text"]
    assert part["unit"] == "bytes" and part["limit"] == 4096
    assert part["size"] == len(part["text"].encode("utf-8"))
    assert (part["number"], part["total"]) == (1, 1)
    assert "Part 1/1" in shown(page) and "4,096 bytes" in shown(page)
    # the search index follows the edit
    assert core.search("新版发布").results[0].item.title == "推理引擎 FlowServe 新版发布"


async def test_a_bad_edit_is_refused_with_what_to_fix(console: Console) -> None:
    core = console.core
    before = editing.items_with_ids(core, DAY)
    first, second = before[:2]
    async with logged_in(console) as (client, token):
        for changes, reason in (
            ({"title": "  "}, "the title is empty"),
            ({"links": "原文: javascript:alert(1)"}, "needs an http:// or https:// address"),
            ({"links": ""}, "every item needs a link"),
            ({"links": second.item.links[0].url}, "another item of 2026-11-27 has the same"),
            # the limits an ingested file is held to
            ({"section": "长" * 300}, "the section is 300 characters, over the limit of 200"),
            ({"summary": "正文\x00"}, "control character U+0000"),
        ):
            answer = await client.post(
                f"/day/{D}/items/{first.id}",
                data={"csrf_token": token, **form_of(first.item, **changes)},
            )
            assert answer.status_code == 303
            page = await client.get(answer.headers["location"])
            assert reason in shown(page), reason
        # an edit made on a page opened before someone else's edit would undo theirs
        theirs = editing.ItemForm.of(dataclasses.replace(first.item, title="他人的修改"))
        editing.edit_item(core, DAY, first.id, dataclasses.replace(theirs, base=""), "cli")
        answer = await client.post(
            f"/day/{D}/items/{first.id}",
            data={"csrf_token": token, **form_of(first.item, title="我的修改")},
        )
        page = await client.get(answer.headers["location"])
        assert "someone changed this item after you opened the page" in shown(page)
        assert core.store.items_on(DAY)[0].title == "他人的修改"
        back = dataclasses.replace(editing.ItemForm.of(first.item), base="")
        editing.edit_item(core, DAY, first.id, back, "cli")
        # an item of another day cannot be reached through this day
        answer = await client.post(
            f"/day/2026-11-26/items/{first.id}/delete", data={"csrf_token": token}
        )
        page = await client.get(answer.headers["location"])
        assert "is not on 2026-11-26" in shown(page)
        assert (await client.get("/day/2026-13-40")).status_code == 404
    assert editing.items_with_ids(core, DAY) == before
    edits = [e for e in core.store.audit_entries() if e.action.endswith("_item")]
    assert [e.actor for e in edits] == ["cli", "cli"]  # the other editor's change and back


async def test_delete_then_undo_puts_the_item_back_in_its_place(console: Console) -> None:
    core = console.core
    items = editing.items_with_ids(core, DAY)
    third = items[2]
    async with logged_in(console) as (client, token):
        answer = await client.post(f"/day/{D}/items/{third.id}/delete", data={"csrf_token": token})
        page = await client.get(answer.headers["location"])
        assert third.item.title not in [i.title for i in core.store.items_on(DAY)]
        [deleted] = [e for e in core.store.audit_entries() if e.action == "delete_item"]
        assert deleted.actor == "console:alice"
        assert deleted.detail["item"]["title"] == third.item.title  # type: ignore[index]
        assert deleted.detail["item"]["links"][0]["url"] == third.item.links[0].url  # type: ignore[index]
        assert f"deleted: {third.item.title}" in shown(page) and 'class="undo"' in shown(page)
        undo = re.search(r'name="undo" value="(\d+)"', page.text)
        assert undo is not None

        answer = await client.post(
            f"/day/{D}/undo", data={"csrf_token": token, "undo": undo.group(1)}
        )
        page = await client.get(answer.headers["location"])
        assert f"restored: {third.item.title}" in shown(page)
        # once only
        answer = await client.post(
            f"/day/{D}/undo", data={"csrf_token": token, "undo": undo.group(1)}
        )
        page = await client.get(answer.headers["location"])
        assert "nothing to undo" in shown(page)
    titles = [i.title for i in core.store.items_on(DAY)]
    assert titles == [e.item.title for e in items]
    restored = core.store.items_on(DAY)[2]
    assert dataclasses.replace(restored, position=0) == dataclasses.replace(third.item, position=0)
    assert [e.action for e in core.store.audit_entries(2)] == ["restore_item", "delete_item"]
    assert core.search(third.item.title.split()[0]).total >= 1


async def test_reorder_and_add_items(console: Console) -> None:
    core = console.core
    items = editing.items_with_ids(core, DAY)
    async with logged_in(console) as (client, token):
        await client.post(
            f"/day/{D}/items/{items[1].id}/move", data={"csrf_token": token, "direction": "up"}
        )
        await client.post(
            f"/day/{D}/items/{items[1].id}/move", data={"csrf_token": token, "direction": "up"}
        )  # already first: nothing happens
        await client.post(
            f"/day/{D}/items/{items[2].id}/move", data={"csrf_token": token, "direction": "down"}
        )
        answer = await client.post(
            f"/day/{D}/items",
            data={
                "csrf_token": token,
                "title": "新增：一条编辑补充的消息",
                "summary": "编辑在控制台里补充的一条。\n\n第二段。",
                "links": "原文：https://example.com/added\n论文地址 https://arxiv.org/abs/2611.00001",
                "tags": "补充，控制台",
                "section": "",
            },
        )
        page = await client.get(answer.headers["location"])
        assert "added: 新增：一条编辑补充的消息" in shown(page)
    titles = [i.title for i in core.store.items_on(DAY)]
    expected = [e.item.title for e in items]
    expected[0], expected[1] = expected[1], expected[0]
    expected[2], expected[3] = expected[3], expected[2]
    assert titles == [*expected, "新增：一条编辑补充的消息"]
    added = core.store.items_on(DAY)[-1]
    assert added.links == (
        Link("原文", "https://example.com/added"),
        Link("论文地址", "https://arxiv.org/abs/2611.00001"),
    )
    assert added.tags == ("补充", "控制台") and added.paragraphs == [
        "编辑在控制台里补充的一条。",
        "第二段。",
    ]
    moves = [e for e in core.store.audit_entries() if e.action == "move_item"]
    assert len(moves) == 2 and all(e.actor == "console:alice" for e in moves)


async def test_hostile_item_text_stays_text(console: Console) -> None:
    core = console.core
    hostile = Item(
        date=DAY,
        title=HOSTILE_TITLE,
        summary='<script>window.__pwned=2</script>摘要 "quoted" & more',
        links=(Link("原文", "javascript:window.__pwned=3"), Link("备份", "https://example.com/ok")),
        tags=("<b>tag</b>",),
        section='"><svg onload=alert(1)>',
        position=99,
    )
    core.store.upsert_items([hostile], source="test")
    async with logged_in(console) as (client, token):
        page = (await client.get(f"/day/{D}?platform=telegram")).text
        [item_id] = [
            e.id for e in editing.items_with_ids(core, DAY) if e.item.title == HOSTILE_TITLE
        ]
        await client.post(
            f"/day/{D}/items/{item_id}",
            data={"csrf_token": token, **form_of(hostile, links="备份: https://example.com/ok")},
        )
        audit = (await client.get("/audit")).text
    for markup in (page, audit):
        assert "<img src=x" not in markup and "<script>window" not in markup
        assert "<b>" not in markup and "<svg" not in markup
    assert "&lt;img src=x onerror=" in page and "&lt;script&gt;" in page
    assert 'href="javascript' not in page and "javascript:window.__pwned=3" in page
    assert 'href="https://example.com/ok"' in page
    # the preview shows the message's own markup as text: Telegram's HTML, escaped twice over
    assert "&amp;lt;img src=x" in page


# -- approve, test send, deliveries -------------------------------------------------------


async def test_approve_records_the_console_name(console: Console) -> None:
    async with logged_in(console) as (client, token):
        answer = await client.post(f"/day/{D}/approve", data={"csrf_token": token})
        page = await client.get(answer.headers["location"])
        empty = await client.post("/day/2020-01-01/approve", data={"csrf_token": token})
        nothing = await client.get(empty.headers["location"])
        calendar = await client.get("/?until=2026-11-28")
    current = status(console.core, DAY)
    assert current.state is BriefState.APPROVED and current.approved_by == "console:alice"
    entry = console.core.store.audit_entries(5)
    assert ("console:alice", "approve", D) in [(e.actor, e.action, e.subject) for e in entry]
    assert "approved by console:alice" in shown(page) and "state-approved" in shown(page)
    assert "no items on 2020-01-01: nothing to approve" in nothing.text
    day = re.search(rf'href="/day/{D}".*?</a>', calendar.text, re.S)
    assert day is not None and "state-approved" in day.group(0) and "6 items" in day.group(0)


async def test_approve_refuses_a_brief_changed_since_the_page_was_loaded(
    console: Console,
) -> None:
    core = console.core
    async with logged_in(console) as (client, token):
        page = await client.get(f"/day/{D}")
        seen = re.search(r'name="content" value="([0-9a-f]{64})"', page.text)
        assert seen is not None
        first = editing.items_with_ids(core, DAY)[0]
        changed = dataclasses.replace(first.item, title="另一位编辑刚改的标题")
        form = dataclasses.replace(editing.ItemForm.of(changed), base="")
        editing.edit_item(core, DAY, first.id, form, "console:bob")
        answer = await client.post(
            f"/day/{D}/approve", data={"csrf_token": token, "content": seen.group(1)}
        )
        after = await client.get(answer.headers["location"])
    assert "changed since this page was loaded" in shown(after)
    assert status(core, DAY).state is BriefState.DRAFT


async def test_the_calendar_shows_each_days_state(console: Console) -> None:
    core = console.core
    approve(core, DAY, "cli")
    approve(core, dt.date(2026, 11, 26), "cli")
    mark_published(core, dt.date(2026, 11, 25))
    items = editing.items_with_ids(core, dt.date(2026, 11, 26))
    editing.edit_item(
        core, dt.date(2026, 11, 26), items[0].id, editing.ItemForm.of(items[0].item), "x"
    )  # nothing changed: still approved
    editing.delete_item(
        core, dt.date(2026, 11, 25), editing.items_with_ids(core, dt.date(2026, 11, 25))[0].id, "x"
    )
    async with logged_in(console) as (client, _):
        page = (await client.get("/?until=2026-11-28")).text

    def card(day: str) -> str:
        found = re.search(rf'href="/day/{day}".*?</a>', page, re.S)
        assert found is not None, day
        return found.group(0)

    assert "state-approved" in card("2026-11-27") and "state-approved" in card("2026-11-26")
    published = card("2026-11-25")
    assert "state-published changed" in published and "changed since it was published" in published
    assert "state-draft" in card("2026-11-24")
    assert "0 items" in card("2026-11-28") and "badge" not in card("2026-11-28")
    assert page.count('class="day') >= 60
    assert 'href="/?until=2026-09-29"' in page


async def test_the_delivery_report_per_target(console: Console) -> None:
    core = console.core
    targets = [
        Target("wecom", "ops", TargetKind.GROUP),
        Target("wecom", "news", TargetKind.GROUP),
        Target("wecom", "old", TargetKind.GROUP),
        Target("wecom", "later", TargetKind.GROUP),
    ]
    rows = core.store.prepare_deliveries(
        DAY, targets, parts_total={"wecom": 2}, content_hash={"wecom": "h"}, force=False
    )
    core.store.finish_delivery(rows[0].id, DeliveryStatus.SENT)
    core.store.finish_delivery(rows[1].id, DeliveryStatus.FAILED, error="errcode 40058: too long")
    core.store.finish_delivery(rows[2].id, DeliveryStatus.GONE, error="the robot was removed")
    async with logged_in(console) as (client, _):
        report = (await client.get(f"/day/{D}/deliveries.json")).json()
        page = (await client.get(f"/day/{D}/deliveries")).text
        day = (await client.get(f"/day/{D}")).text
    assert report["active"] is True  # "later" is still pending
    assert report["counts"] == {"sent": 1, "failed": 1, "gone": 1, "pending": 1}
    by_chat = {row["chat_id"]: row for row in report["rows"]}
    assert by_chat["news"]["error"] == "errcode 40058: too long"
    assert by_chat["ops"]["status"] == "sent" and by_chat["ops"]["sent_at"]
    assert by_chat["later"]["parts_total"] == 2 and by_chat["later"]["parts_sent"] == 0
    assert 'data-active="true"' in page and "errcode 40058: too long" in page
    assert 'data-target="wecom:old"' in page and "gone" in page
    assert "failed 1" in day and "pending 1" in day


async def test_test_send_goes_to_the_editors_chat_through_the_running_service(
    tmp_path: Path,
) -> None:
    async with WecomRobotServer() as wecom:
        robot = wecom.add_robot("editors")
        port = _free_port()
        core = make_core(
            tmp_path,
            f'[console]\nlisten = "127.0.0.1:{port}"\n'
            '[editors]\nplatform = "wecom"\nchat = "editors"\n'
            '[wecom]\nper_minute = 6000\n[[wecom.robots]]\nname = "editors"\n',
            {"BRIEFBOT_WECOM_WEBHOOK_EDITORS": robot.webhook_url},
        )
        service = build_service(core, receive=False)
        try:
            await start_platforms(service)
            server = await start_console(service)
            try:
                assert server.url == f"http://127.0.0.1:{port}/"
                secret_file = tmp_path / "data" / "console.secret"
                assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
                async with logged_in(Console(core, server)) as (client, token):
                    page = await client.get(f"/day/{D}")
                    assert "Test send to wecom:editors" in shown(page)
                    answer = await client.post(f"/day/{D}/test-send", data={"csrf_token": token})
                    page = await client.get(answer.headers["location"])
            finally:
                await server.stop()
        finally:
            await service.stop(grace=1)
            core.store.close()
        messages = wecom.messages_to("editors")
    sent = "test send: 2 message(s) to the editors' chat wecom:editors"
    assert sent in shown(page)
    assert len(messages) == 2 and "Test send" in messages[0].text
    assert "开源推理引擎 FlowServe" in messages[1].text
    assert core.store.deliveries(DAY) == []  # outside the ledger: nothing is published
    assert next((e.actor, e.action) for e in core.store.audit_entries(3)) == (
        "console:alice",
        "test_send",
    )


async def test_without_a_service_there_is_no_test_send(console: Console) -> None:
    async with logged_in(console) as (client, token):
        page = await client.get(f"/day/{D}")
        assert 'id="test-send"' not in shown(page)
        answer = await client.post(f"/day/{D}/test-send", data={"csrf_token": token})
        page = await client.get(answer.headers["location"])
    assert "test sends need the running service" in shown(page)


# -- subscribers, schedule, audit ---------------------------------------------------------


async def test_subscribers_are_found_by_id_or_name_and_deactivated_with_an_audit(
    console: Console,
) -> None:
    store = console.core.store
    store.add_subscriber("telegram", "1001", name="张三")
    store.add_subscriber("telegram", "2002", name="Li <b>Si</b>")
    store.add_subscriber("telegram", "-100300", TargetKind.CHANNEL, name="频道")
    with store.session() as s:  # a reader's own choices show with it
        s.execute(
            update(SubscriberRow)
            .where(SubscriberRow.chat_id == "1001")
            .values(topics=["芯片", "开源"], send_time="07:30", timezone="Asia/Tokyo")
        )
    async with logged_in(console) as (client, token):
        by_name = (await client.get("/subscribers", params={"q": "张"})).text
        by_id = (await client.get("/subscribers", params={"q": "200"})).text
        wildcard = (await client.get("/subscribers", params={"q": "%"})).text
        answer = await client.post(
            "/subscribers/deactivate",
            data={"csrf_token": token, "platform": "telegram", "chat_id": "1001", "q": "张"},
        )
        assert answer.status_code == 303
        after = (await client.get(answer.headers["location"])).text
        answer = await client.post(
            "/subscribers/deactivate",
            data={"csrf_token": token, "platform": "telegram", "chat_id": "1001"},
        )
        again = (await client.get(answer.headers["location"])).text
    assert "telegram:1001" in by_name and "telegram:2002" not in by_name
    assert "topics: 芯片, 开源 · at 07:30 Asia/Tokyo" in by_name
    assert "telegram:2002" in by_id and "Li &lt;b&gt;Si&lt;/b&gt;" in by_id
    assert "telegram:1001" not in by_id and "No subscriber matches." in wildcard
    assert not store.is_subscribed("telegram", "1001")
    assert store.is_subscribed("telegram", "2002")
    assert "deactivated telegram:1001" in after and "deactivated by console:alice" in after
    assert "is not an active subscriber" in again
    [entry] = [e for e in store.audit_entries() if e.action == "deactivate_subscriber"]
    assert (entry.actor, entry.subject) == ("console:alice", "telegram:1001")


async def test_schedule_and_audit_pages(tmp_path: Path) -> None:
    core = make_core(
        tmp_path,
        '[schedule]\ndefault = "07:30"\nrequire_approval = true\n[[wecom.robots]]\nname = "ops"\n',
        {"BRIEFBOT_WECOM_WEBHOOK_OPS": "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k"},
    )
    server = ConsoleServer(core, secret=SECRET)
    await server.start()
    try:
        async with logged_in(Console(core, server)) as (client, token):
            schedule = (await client.get("/schedule")).text
            calendar = (await client.get("/")).text
            first = editing.items_with_ids(core, DAY)[0]
            await client.post(f"/day/{D}/items/{first.id}/delete", data={"csrf_token": token})
            audit = (await client.get("/audit")).text
    finally:
        await server.stop()
        core.store.close()
    assert "wecom:channels:07:30" in schedule and "07:30" in schedule
    assert "Only approved briefs are sent" in schedule
    assert "Next run: wecom:channels:07:30" in calendar
    assert "delete_item" in audit and "console:alice" in audit and first.item.title in audit
    assert f'action="/day/{D}/undo"' in audit and "add_admin" in audit


# -- passwords, the secret, the CLI -------------------------------------------------------


def test_passwords_are_scrypt_hashes_with_a_random_salt() -> None:
    first = auth.hash_password("a long enough password")
    second = auth.hash_password("a long enough password")
    assert first != second
    scheme, n, r, p, salt, digest = first.split("$")
    assert (scheme, n, r, p) == ("scrypt", "16384", "8", "1")
    assert len(base64.b64decode(salt)) == 16 and len(base64.b64decode(digest)) == 32
    assert auth.verify_password("a long enough password", first)
    assert not auth.verify_password("a long enough passworD", first)
    huge = "$".join(["scrypt", str(2**20), "32", "1", salt, digest])  # over the memory cap
    odd = "$".join(["scrypt", "1000", "8", "1", salt, digest])  # n not a power of two
    for broken in (
        "",
        "scrypt$1$8$1$AA==$AA==",
        "md5$x",
        first.replace("scrypt", "bcrypt"),
        huge,
        odd,
    ):
        assert not auth.verify_password("a long enough password", broken)


def test_the_session_secret_comes_from_the_environment_or_a_private_file(tmp_path: Path) -> None:
    settings = load_settings(None, environ={"BRIEFBOT_STORE_DATA_DIR": str(tmp_path / "d")})
    assert auth.load_secret(settings, {auth.SECRET_ENV: "e" * 40}) == b"e" * 40
    with pytest.raises(ConfigError, match="at least 32 characters"):
        auth.load_secret(settings, {auth.SECRET_ENV: "short"})
    made = auth.load_secret(settings, {})
    path = tmp_path / "d" / "console.secret"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and len(made) == 64
    path.chmod(0o644)
    assert auth.load_secret(settings, {}) == made  # the same key after a restart
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="briefbot")
    add_parser(parser.add_subparsers(dest="verb", required=True))
    return parser


def test_add_admin_from_stdin_then_list_admins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    core = make_core(tmp_path)
    try:
        args = _parser().parse_args(["console", "add-admin", "bob", "--password-stdin"])
        monkeypatch.setattr(sys, "stdin", io.StringIO("bob's long password\n"))
        assert args.handler(args, core) == 0
        assert capsys.readouterr().out == "created console admin bob\n"
        login_ok = auth.attempt_login(
            core.store, SECRET, "bob", "bob's long password", dt.datetime.now(dt.UTC)
        )
        assert login_ok.outcome is auth.LoginOutcome.OK
        with core.store.session() as s:
            stored = s.get(ConsoleAdminRow, "bob")
            assert stored is not None and stored.password_hash.startswith("scrypt$16384$8$1$")
            assert "long password" not in stored.password_hash
        # again: refused without --reset; a short password is refused
        monkeypatch.setattr(sys, "stdin", io.StringIO("another long one\n"))
        with pytest.raises(UsageError, match="exists already"):
            args.handler(args, core)
        args = _parser().parse_args(["console", "add-admin", "carol", "--password-stdin"])
        monkeypatch.setattr(sys, "stdin", io.StringIO("short\n"))
        with pytest.raises(UsageError, match="at least 10 characters"):
            args.handler(args, core)
        args = _parser().parse_args(["console", "add-admin", "bob", "--password-stdin", "--reset"])
        monkeypatch.setattr(sys, "stdin", io.StringIO("bob's new password\n"))
        assert args.handler(args, core) == 0
        args = _parser().parse_args(["console", "list-admins", "--json"])
        capsys.readouterr()
        assert args.handler(args, core) == 0
        listed = json.loads(capsys.readouterr().out)
        assert [a["name"] for a in listed["admins"]] == ["alice", "bob"]
        actions = [(e.action, e.subject) for e in core.store.audit_entries(2)]
        assert actions == [("reset_admin", "bob"), ("add_admin", "bob")]
        # `briefbot console` alone serves; without an address it says what to set
        args = _parser().parse_args(["console"])
        with pytest.raises(ConfigError, match=r"\[console\] listen"):
            args.handler(args, core)
    finally:
        core.store.close()


def test_every_console_action_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (
        ["console"],
        ["console", "serve"],
        ["console", "add-admin"],
        ["console", "list-admins"],
    ):
        with pytest.raises(SystemExit) as exit_info:
            _parser().parse_args([*argv, "--help"])
        assert exit_info.value.code == 0
        assert "usage: briefbot console" in capsys.readouterr().out


def test_the_console_verb_imports_nothing_heavy() -> None:
    script = (
        "import sys\nimport argparse\nfrom bot.console.cli import add_parser\n"
        "p = argparse.ArgumentParser(); add_parser(p.add_subparsers()); p.format_help()\n"
        "heavy = {'sqlalchemy', 'aiohttp', 'jinja2', 'httpx', 'alembic', 'apscheduler'}\n"
        "print(sorted(heavy & {m.split('.')[0] for m in sys.modules}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert out.stdout.strip() == "[]"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port
