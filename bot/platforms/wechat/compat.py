"""Make wechaty 0.10.7 importable and safe to run inside briefbot (the only module that imports it).

wechaty 0.10.7 (with wechaty-puppet 0.4.23 and wechaty-puppet-service 0.8.10) is the last
Python release and was written for Python ≤ 3.10. What this module works around, and why:

* Import fails on 3.11+: ``WechatyOptions.puppet_options = PuppetOptions()`` is a mutable
  dataclass default, which 3.11 rejects unless the default's class is hashable. We give
  ``PuppetOptions`` the identity hash before the import. (That default is also *shared* by every
  ``WechatyOptions()``; :func:`make_wechaty` always passes its own ``PuppetOptions``.)
* ``telnetlib`` is imported (to probe ports); it warns on 3.11/3.12 and is gone in 3.13. We
  silence exactly that DeprecationWarning during the import and turn its absence into a
  :class:`~bot.errors.ConfigError`.
* Import creates ``$CACHE_DIR`` (default ``./.wechaty``) at once: we set ``CACHE_DIR`` first.
* Every wechaty logger gets its own stderr handler, ``propagate = False`` and INFO level, and
  logs tokens, wxids and message text: we route them through briefbot's logging at WARNING,
  masked. hpack (under grpclib) logs the token at DEBUG: its logger starts at INFO.
* Without an endpoint, the puppet fetches one from a discovery service
  (``https://api.chatie.io/v0/hosties/<token>``): :func:`make_wechaty` refuses to build a
  client without an explicit ``host:port``.
* On login the plugin manager probes ``127.0.0.1:<port>`` (default 5000), starts an APScheduler
  with a SQLite job store and may start a web server: briefbot uses no wechaty plugins, so the
  client skips that step.
* ``Wechaty.start()`` swallows errors: on a network error it sleeps 60 s and recurses, on a
  puppet error it calls ``loop.stop()`` (stopping *our* event loop), anything else is printed.
  :class:`BriefbotWechaty` runs the same steps and lets errors reach the caller, who decides
  how to reconnect.
* ``Contact``/``Room``/``Tag`` keep class-level pools shared by every client in the process
  (objects in them stay bound to the puppet that loaded them, a stopped one after a reconnect),
  and a process-wide message-id set drops any id it has seen before: each client start gets
  fresh pools, and :func:`reset_wechaty_state` clears the globals between runs and tests.

What the client does on the wire (read from wechaty_puppet_service/puppet.py and config.py):
it connects with grpclib in **plaintext** (no TLS support at all) to ``options.end_point``,
falling back to ``$WECHATY_PUPPET_SERVICE_ENDPOINT`` (or ``$ENDPOINT``/``$endpoint``); the
token (option, else ``$WECHATY_PUPPET_SERVICE_TOKEN``/``$TOKEN``/``$token``) is sent as the
HTTP/2 ``:authority`` header and its format is not checked by the client. Gateways that speak
TLS by default only accept such plaintext clients when configured for it (wechaty's convention
is a token starting with ``insecure_``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import sys
import tempfile
import warnings
from pathlib import Path
from types import ModuleType
from typing import Any, cast

from bot.errors import ConfigError
from bot.logs import mask, register_secrets, scrub

log = logging.getLogger(__name__)

# The type of a wechaty client: wechaty ships no type information.
WechatyClient = Any

# wechaty logs every event at INFO, with ids and message text; briefbot logs its own events.
LIBRARY_LOGGER_LEVEL = logging.WARNING
_CACHE_SUBDIR = "briefbot-wechaty"
_ENDPOINT_RE = re.compile(r"^(?P<host>[A-Za-z0-9._-]+|\[[0-9A-Fa-f:]+\]):(?P<port>\d{1,5})$")
_STOP_TIMEOUT = 5.0

_module: ModuleType | None = None
_client_class: type | None = None


# --- masking -------------------------------------------------------------------------------


mask_id = mask  # one masking rule for every log line


def mask_text(text: str) -> str:
    """``text`` with wxids, room ids and known tokens masked (briefbot's one redaction rule)."""
    return scrub(text)


class _MaskFilter(logging.Filter):
    """Rewrites a wechaty log record so wxids, room ids and known tokens are masked."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        # Logged on every client start, with the token in clear; the options always win.
        if message.startswith(("there are endpoint<", "there are two ")):
            return False
        record.msg, record.args = mask_text(message), None
        return True


_mask_filter = _MaskFilter()


def _tame_library_loggers(names: set[str]) -> None:
    """Send the loggers wechaty created through briefbot's handlers, at WARNING, masked."""
    for name in names:
        logger = logging.getLogger(name)
        logger.handlers = []
        logger.propagate = True
        logger.setLevel(LIBRARY_LOGGER_LEVEL)
        if _mask_filter not in logger.filters:
            logger.addFilter(_mask_filter)


# --- import --------------------------------------------------------------------------------


def _cache_dir(cache_dir: Path | None) -> Path:
    if cache_dir is not None:
        return cache_dir
    if os.environ.get("CACHE_DIR"):
        return Path(os.environ["CACHE_DIR"])
    return Path(tempfile.gettempdir()) / _CACHE_SUBDIR


def check_python(version: tuple[int, ...] = sys.version_info[:2]) -> None:
    """Raise :class:`ConfigError` on a Python that wechaty 0.10.7 cannot run on."""
    if version >= (3, 13):
        raise ConfigError(
            "WeChat support needs Python 3.11 or 3.12: wechaty 0.10.7 imports telnetlib, which "
            f"Python {version[0]}.{version[1]} no longer has. Run "
            "briefbot under Python 3.12, or leave [wechat] endpoint and "
            "BRIEFBOT_WECHAT_ENDPOINT unset to run without WeChat."
        )


def load_wechaty(cache_dir: Path | None = None) -> ModuleType:
    """Import and patch wechaty once per process; return the ``wechaty`` module.

    ``cache_dir`` becomes wechaty's ``CACHE_DIR`` (it only creates the directory); default: the
    ``CACHE_DIR`` already set, else ``<tmp>/briefbot-wechaty``, never the working directory.
    """
    global _module
    if _module is not None:
        return _module
    check_python()
    directory = _cache_dir(cache_dir)
    directory.mkdir(parents=True, exist_ok=True)
    # wechaty reads CACHE_DIR at import (a class attribute default) and makes the directory.
    os.environ["CACHE_DIR"] = str(directory)
    before = set(logging.Logger.manager.loggerDict)
    try:
        with warnings.catch_warnings():
            # wechaty/plugin.py and wechaty_puppet_service/utils.py import telnetlib, which
            # warns on import in 3.11/3.12; only that warning is silenced.
            warnings.filterwarnings(
                "ignore",
                message=r"'telnetlib' is deprecated",
                category=DeprecationWarning,
            )
            from wechaty_puppet.schemas import puppet as puppet_schema

            # 3.11+ refuses the PuppetOptions() dataclass default of WechatyOptions unless
            # PuppetOptions is hashable (eq=True dataclasses set __hash__ to None).
            if puppet_schema.PuppetOptions.__hash__ is None:
                puppet_schema.PuppetOptions.__hash__ = object.__hash__
            import wechaty
            import wechaty_puppet_service  # imported lazily by wechaty; import it here to tame
    except ModuleNotFoundError as exc:
        if exc.name == "telnetlib":
            check_python()
            raise ConfigError(f"WeChat support cannot import telnetlib: {exc}") from exc
        raise ConfigError(
            f"WeChat support needs the wechat extra ({exc.name} is missing): "
            "pip install 'briefbot[wechat]'"
        ) from exc
    del wechaty_puppet_service
    _tame_library_loggers(set(logging.Logger.manager.loggerDict) - before)
    # hpack logs every HTTP/2 header at DEBUG, and the token travels as :authority.
    hpack_logger = logging.getLogger("hpack")
    if hpack_logger.level == logging.NOTSET:
        hpack_logger.setLevel(logging.INFO)
    _module = cast(ModuleType, wechaty)
    return _module


# --- the client ----------------------------------------------------------------------------


def _client_type() -> type:
    """The :class:`BriefbotWechaty` class, defined once wechaty is importable."""
    global _client_class
    if _client_class is not None:
        return _client_class
    wechaty = load_wechaty()

    class BriefbotWechaty(wechaty.Wechaty):  # type: ignore[misc, name-defined]
        """A ``Wechaty`` whose start reports errors and whose accessor pools are its own."""

        _puppet: Any

        def __init__(self, options: Any) -> None:
            super().__init__(options)
            # No wechaty plugins: skip the plugin manager's port probe, scheduler and web UI.
            self._plugin_manager.start = _no_plugins

        async def init_puppet(self) -> None:
            await super().init_puppet()
            # init_puppet makes per-puppet subclasses, but they would all share the base
            # classes' _pool dicts; give each its own so no object outlives its puppet.
            for accessory in (self.Contact, self.ContactSelf, self.Room, self.Tag):
                accessory._pool = {}
            puppet_options = self.puppet.options
            if not puppet_options.end_point:
                # Unreachable through make_wechaty; guards the discovery-service call.
                raise ConfigError("set [wechat] endpoint or BRIEFBOT_WECHAT_ENDPOINT")

        async def start(self) -> None:
            """Connect, log in and listen; returns or raises when the event stream ends."""
            self._close_channel()
            await self.init_puppet()
            await self.init_puppet_event_bridge(self.puppet)
            try:
                await self.puppet.start()
            finally:
                # The stream is over: this puppet is done, and grpclib warns about open channels.
                self._close_channel()

        async def stop(self) -> None:
            """Stop the puppet and always close its channel, even if the gateway is gone."""
            puppet = self._puppet
            if puppet is None:
                return
            try:
                await asyncio.wait_for(super().stop(), timeout=_STOP_TIMEOUT)
            except Exception as exc:
                log.debug("wechat.client_stop_error error=%s", type(exc).__name__)
            finally:
                self._close_channel(puppet)
                self._puppet = None

        def _close_channel(self, puppet: Any = None) -> None:
            channel = getattr(puppet or self._puppet, "channel", None)
            if channel is not None:
                channel.close()  # idempotent; a later RPC on it would reconnect

    _client_class = BriefbotWechaty
    return BriefbotWechaty


async def _no_plugins() -> None:
    return None


def check_endpoint(endpoint: str) -> str:
    """Return ``endpoint`` as ``host:port`` or raise a :class:`ConfigError` saying what is wrong."""
    value = endpoint.strip()
    if not value:
        raise ConfigError("set [wechat] endpoint or BRIEFBOT_WECHAT_ENDPOINT (host:port)")
    if value.startswith("https://"):
        raise ConfigError(
            f"[wechat] endpoint {value!r}: wechaty 0.10.7 cannot speak TLS; give host:port of "
            "a gateway that accepts plaintext gRPC"
        )
    value = value.removeprefix("http://")
    match = _ENDPOINT_RE.match(value)
    if match is None or not 0 < int(match.group("port")) < 65536:
        raise ConfigError(f"[wechat] endpoint {value!r} is not host:port (e.g. 127.0.0.1:8788)")
    return value


def check_token(token: str) -> str:
    """Return ``token`` or raise: wechaty sends it as HTTP/2 ``:authority``, so it must be set."""
    value = token.strip()
    if not value:
        raise ConfigError("set BRIEFBOT_WECHAT_TOKEN (the puppet service token)")
    if not value.isascii() or any(ch.isspace() for ch in value):
        raise ConfigError("BRIEFBOT_WECHAT_TOKEN must be ASCII without spaces")
    return value


def make_wechaty(
    endpoint: str, token: str, *, name: str = "briefbot", cache_dir: Path | None = None
) -> WechatyClient:
    """Build a :class:`BriefbotWechaty` for a puppet service at ``endpoint`` (host:port).

    The client connects directly, in plaintext, never asks the discovery service and ignores
    the ``WECHATY_PUPPET_SERVICE_*`` environment (explicit options win over it).
    """
    endpoint = check_endpoint(endpoint)
    token = check_token(token)
    wechaty = load_wechaty(cache_dir)
    client_type = _client_type()
    from apscheduler.schedulers.asyncio import AsyncIOScheduler
    from wechaty_puppet import PuppetOptions

    register_secrets([token])
    options = wechaty.WechatyOptions(
        name=name,
        puppet="wechaty-puppet-service",
        puppet_options=PuppetOptions(token=token, end_point=endpoint),
        token=token,
        endpoint=endpoint,
        host="127.0.0.1",
        port=0,
        # An idle in-memory scheduler instead of the default SQLite job store in CACHE_DIR.
        scheduler=AsyncIOScheduler(),
    )
    return client_type(options)


def reset_wechaty_state() -> None:
    """Forget wechaty's process-wide state: accessor pools, the seen message ids, the singleton.

    Call between runs in one process (tests, a restarted platform): message ids seen by an
    earlier run would otherwise be dropped, and pooled objects would use a stopped puppet.
    """
    if _module is None:
        return
    from wechaty.user import Contact, Room, Tag
    from wechaty.utils.async_helper import SingleIdContainer

    Contact._pool.clear()
    Room._pool.clear()
    Tag._pool.clear()
    SingleIdContainer._instance = None
    _module.Wechaty._global_instance = None
