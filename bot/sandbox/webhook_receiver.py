"""A loopback integrator endpoint for briefbot's own outbound webhook: it verifies and records
what briefbot delivers, like a well-behaved receiver on the other side would.

The contract is briefbot's (no external documentation): ``POST /hooks/{name}`` with
``Content-Type: application/json`` and the headers

* ``X-Briefbot-Event``: what happened, e.g. ``brief``;
* ``X-Briefbot-Delivery``: an idempotency id, identical on every retry of one delivery;
* ``X-Briefbot-Timestamp``: Unix seconds when the request was signed;
* ``X-Briefbot-Signature``: ``sha256=`` + hex HMAC-SHA256(secret, f"{timestamp}.{raw body}").

Answers: 204 (or ``success_status``) on success — a repeated delivery id is acknowledged
again and counted in ``duplicates``; 401 for a missing, stale (beyond ``tolerance`` seconds)
or wrong signature; 400 for missing headers or a body that is not JSON; 415 for another
content type; 404 for an unknown endpoint; 410 for a removed one.  Faults: ``server_error``,
``timeout``, ``drop``, ``reset`` and ``gone`` (410), and request holds as on the robot servers.
Run ``python -m bot.sandbox.webhook_receiver --endpoint NAME:SECRET`` to try it by hand.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import hmac
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from aiohttp import web
from multidict import CIMultiDict

from bot.sandbox.robot_base import (
    Clock,
    Fault,
    FaultKind,
    LoopbackServer,
    RequestHold,
    max_in_window,
)

__all__ = [
    "DEFAULT_TOLERANCE",
    "Delivery",
    "WebhookReceiver",
    "main",
    "sign_webhook",
]

JSONDict = dict[str, Any]

# Like Stripe's and Slack's receivers: a signature older or newer than 5 minutes is refused,
# so a captured request cannot be replayed later.
DEFAULT_TOLERANCE = 300.0
_SIGNATURE_PREFIX = "sha256="


def sign_webhook(secret: str, timestamp: int | str, body: bytes) -> str:
    """The ``X-Briefbot-Signature`` value for ``body`` signed at ``timestamp``."""
    mac = hmac.new(secret.encode("utf-8"), f"{timestamp}.".encode() + body, hashlib.sha256)
    return _SIGNATURE_PREFIX + mac.hexdigest()


@dataclass(frozen=True)
class Delivery:
    """One delivery the receiver accepted (a duplicate is recorded again, flagged)."""

    endpoint: str
    event: str
    delivery_id: str
    timestamp: int
    payload: Any  # the parsed JSON body
    headers: Mapping[str, str]  # case-insensitive, as received
    body: bytes  # the raw body, as signed
    t: float  # clock reading when the request arrived
    duplicate: bool = False


@dataclass
class _Endpoint:
    name: str
    secret: str
    gone: bool = False


class WebhookReceiver(LoopbackServer):
    """Loopback receiver of briefbot's outbound webhook.

    Args:
        tolerance: seconds a signature timestamp may be from the receiver's wall clock.
        success_status: 204 (no body) or 200 (``{"ok": true}``).
        host, port, clock, wall_clock: see :class:`~bot.sandbox.robot_base.LoopbackServer`.
    """

    platform: ClassVar[str] = "webhook"

    def __init__(
        self,
        *,
        tolerance: float = DEFAULT_TOLERANCE,
        success_status: int = 204,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Clock = time.monotonic,
        wall_clock: Clock = time.time,
    ) -> None:
        if success_status not in (200, 204):
            raise ValueError("success_status must be 200 or 204")
        super().__init__(host=host, port=port, clock=clock, wall_clock=wall_clock)
        self.tolerance = tolerance
        self.success_status = success_status
        self.skew = 0.0  # seconds added to the wall clock when checking timestamps
        self.deliveries: list[Delivery] = []
        self.duplicates = 0
        self.rejected: dict[int, int] = {}  # HTTP status of refused requests -> count
        self.on_delivery: Callable[[Delivery], None] | None = None
        self._endpoints: dict[str, _Endpoint] = {}
        self._seen: set[tuple[str, str]] = set()
        self._changed = asyncio.Event()

    # ── test API ─────────────────────────────────────────────────────────────────────────

    def add_endpoint(self, name: str, secret: str) -> str:
        """Register ``/hooks/{name}`` verifying with ``secret``; return its full URL."""
        if name in self._endpoints:
            raise ValueError(f"endpoint {name!r} already exists")
        if not name or "/" in name:
            raise ValueError("an endpoint name is one non-empty path segment")
        if not secret:
            raise ValueError("an endpoint needs a secret")
        self._endpoints[name] = _Endpoint(name, secret)
        return self.endpoint_url(name)

    def endpoint_url(self, name: str) -> str:
        return f"{self.base_url}/hooks/{name}"

    def remove_endpoint(self, name: str) -> None:
        """The integrator removed the hook: every later request gets 410 Gone."""
        self._endpoint(name).gone = True

    def deliveries_to(self, name: str, *, duplicates: bool = True) -> list[Delivery]:
        """Deliveries endpoint ``name`` accepted, in order (without repeats if asked)."""
        return [
            d for d in self.deliveries if d.endpoint == name and (duplicates or not d.duplicate)
        ]

    async def wait_for_deliveries(
        self,
        count: int,
        endpoint: str | None = None,
        timeout: float = 5.0,  # noqa: ASYNC109  # a test helper: the deadline is its point
    ) -> list[Delivery]:
        """Return the deliveries (to ``endpoint``) once there are at least ``count``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            found = self.deliveries if endpoint is None else self.deliveries_to(endpoint)
            if len(found) >= count:
                return found
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"waited {timeout:g}s for {count} deliveries; have {len(found)}")
            event = self._changed
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), remaining)

    def max_in_window(
        self, window: float = 60.0, endpoint: str | None = None, *, event: str | None = None
    ) -> int:
        """The most requests that arrived in any ``window`` seconds (to ``endpoint``, of
        ``event``, if given): pacing as the receiver saw it."""
        return max_in_window(self.arrivals, window, method=event, chat_id=endpoint)

    def hold_requests(
        self,
        endpoint: str | None = None,
        after: int = 0,
        *,
        event: str | None = None,
        deliver_first: bool = False,
    ) -> RequestHold:
        """Hold requests to ``endpoint`` (``None``: any) until ``release()``; with
        ``deliver_first`` the delivery is accepted and only the answer is held.  Same
        semantics as :meth:`~bot.sandbox.robot_base.RobotServer.hold_requests`."""
        return self._add_hold(endpoint, event, after, deliver_first)

    def fail(
        self,
        kind: FaultKind,
        *,
        endpoint: str | None = None,
        count: int | None = 1,
        status: int = 500,
        delay: float = 30.0,
        deliver: bool = False,
    ) -> Fault:
        """Make the next ``count`` requests to ``endpoint`` (``None``: any) fail:
        ``"server_error"`` (HTTP ``status``), ``"timeout"`` (hold ``delay`` s, then 504; with
        ``deliver`` accepted first and answered normally after the delay), ``"drop"`` /
        ``"reset"`` (no answer; ``deliver`` accepts first), ``"gone"`` (410)."""
        if kind not in ("server_error", "timeout", "drop", "reset", "gone"):
            raise ValueError(f"unknown fault kind {kind!r}")
        if endpoint is not None:
            self._endpoint(endpoint)
        fault = Fault(
            kind=kind, target=endpoint, remaining=count, status=status, delay=delay, deliver=deliver
        )
        return self._add_fault(fault, count)

    # ── HTTP ─────────────────────────────────────────────────────────────────────────────

    def _add_routes(self, app: web.Application) -> None:
        app.router.add_route("*", "/hooks/{name}", self._handle)

    def _fault_answer(self, fault: Fault, target: str | None) -> web.Response:
        if fault.kind != "gone":
            return super()._fault_answer(fault, target)
        return self._refuse(410, "gone")

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        arrived = self.clock()
        body = await request.read()
        name = request.match_info["name"]
        target = name if name in self._endpoints else None
        method = request.headers.get("X-Briefbot-Event") or "post"
        headers = CIMultiDict(request.headers)
        return await self._serve(
            request,
            arrived=arrived,
            target=target,
            method=method,
            evaluate=lambda: self._evaluate(request, name, headers, body, arrived),
        )

    def _evaluate(
        self,
        request: web.Request,
        name: str,
        headers: CIMultiDict[str],
        body: bytes,
        arrived: float,
    ) -> web.Response:
        endpoint = self._endpoints.get(name)
        if endpoint is None:
            return self._refuse(404, "no such endpoint")
        if endpoint.gone:
            return self._refuse(410, "gone")
        if request.method != "POST":
            return self._refuse(405, "POST only")
        if request.content_type != "application/json":
            return self._refuse(415, "Content-Type must be application/json")
        raw_ts = request.headers.get("X-Briefbot-Timestamp", "")
        signature = request.headers.get("X-Briefbot-Signature", "")
        if not raw_ts.isdigit() or not signature.startswith(_SIGNATURE_PREFIX):
            return self._refuse(401, "missing or malformed signature")
        if abs(self.wall_clock() + self.skew - int(raw_ts)) > self.tolerance:
            return self._refuse(401, "timestamp outside the tolerance")
        expected = sign_webhook(endpoint.secret, raw_ts, body)
        if not hmac.compare_digest(signature.encode(), expected.encode()):
            return self._refuse(401, "bad signature")
        event = request.headers.get("X-Briefbot-Event", "")
        delivery_id = request.headers.get("X-Briefbot-Delivery", "")
        if not event or not delivery_id:
            return self._refuse(400, "X-Briefbot-Event and X-Briefbot-Delivery are required")
        try:
            payload = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return self._refuse(400, "body is not JSON")
        key = (name, delivery_id)
        duplicate = key in self._seen
        self._seen.add(key)
        if duplicate:
            self.duplicates += 1
        delivery = Delivery(
            endpoint=name,
            event=event,
            delivery_id=delivery_id,
            timestamp=int(raw_ts),
            payload=payload,
            headers=headers,
            body=body,
            t=arrived,
            duplicate=duplicate,
        )
        self.deliveries.append(delivery)
        self.stats.accepted += 1
        event_, self._changed = self._changed, asyncio.Event()
        event_.set()
        if self.on_delivery is not None:
            self.on_delivery(delivery)
        if self.success_status == 204:
            return web.Response(status=204)
        return self._json({"ok": True}, 200)

    def _refuse(self, status: int, reason: str) -> web.Response:
        self._count_status(status)
        self.rejected[status] = self.rejected.get(status, 0) + 1
        return self._json({"ok": False, "error": reason}, status)

    def _endpoint(self, name: str) -> _Endpoint:
        try:
            return self._endpoints[name]
        except KeyError:
            raise KeyError(f"no endpoint {name!r}; known: {sorted(self._endpoints)}") from None


def main(argv: list[str] | None = None) -> None:
    """Run the receiver by hand: ``--endpoint NAME:SECRET`` (repeatable), ``--port``."""
    parser = argparse.ArgumentParser(
        prog="python -m bot.sandbox.webhook_receiver",
        description="Loopback receiver of briefbot's signed outbound webhook.",
    )
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--endpoint", action="append", default=[], metavar="NAME:SECRET")
    args = parser.parse_args(argv)

    async def serve() -> None:
        async with WebhookReceiver(port=args.port) as receiver:
            for spec in args.endpoint or ["demo:demo-secret"]:
                name, _, secret = spec.partition(":")
                print(f"{name}: {receiver.add_endpoint(name, secret or 'demo-secret')}", flush=True)
            receiver.on_delivery = lambda d: print(
                f"→ {d.endpoint} {d.event} {d.delivery_id}{' (dup)' if d.duplicate else ''}",
                flush=True,
            )
            await asyncio.Event().wait()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())


if __name__ == "__main__":
    main()
