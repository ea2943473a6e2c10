"""Who may use the console and how they prove it: admin accounts with scrypt password hashes,
signed session cookies, CSRF tokens bound to the session, and login throttling per name and
per client address.

Nothing here logs or stores a password or a cookie; a password exists only as its hash.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import json
import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from sqlalchemy import select, update

from bot.config import Settings
from bot.errors import ConfigError, UsageError
from bot.store import Store
from bot.store.database import aware
from bot.store.models import AuditRow, ConsoleAdminRow

# scrypt as OWASP suggests for interactive logins: 16 MiB and ~50 ms per check
SCRYPT_N = 2**14
SCRYPT_R = 8
SCRYPT_P = 1
SALT_BYTES = 16
HASH_BYTES = 32
# the most a stored hash may ask for (a tampered row must not make a login eat the memory)
_MAX_N = 2**20
_MAXMEM = 256 * 1024 * 1024

SECRET_ENV = "BRIEFBOT_CONSOLE_SECRET"
SECRET_FILE = "console.secret"
MIN_SECRET_CHARS = 32
MIN_PASSWORD_CHARS = 10

# failed logins before a name is locked, and for how long; an address gets more room (an
# office behind one NAT address shares it)
NAME_MAX_FAILURES = 5
ADDRESS_MAX_FAILURES = 10
LOCK_TIME = dt.timedelta(minutes=15)

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}")


def valid_admin_name(name: str) -> bool:
    """1–64 characters: letters, digits and ``_ . @ -`` (it appears in the audit log)."""
    return _NAME.fullmatch(name) is not None


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# -- passwords -----------------------------------------------------------------------------


def hash_password(password: str) -> str:
    """``scrypt$n$r$p$salt$hash`` (salt and hash base64), a fresh random salt each time."""
    salt = secrets.token_bytes(SALT_BYTES)
    digest = hashlib.scrypt(
        password.encode("utf-8"),
        salt=salt,
        n=SCRYPT_N,
        r=SCRYPT_R,
        p=SCRYPT_P,
        maxmem=_MAXMEM,
        dklen=HASH_BYTES,
    )
    encode = base64.b64encode
    return (
        f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}$"
        f"{encode(salt).decode('ascii')}${encode(digest).decode('ascii')}"
    )


def verify_password(password: str, encoded: str) -> bool:
    """Whether ``password`` matches ``encoded`` (compared in constant time); a malformed
    hash matches nothing."""
    try:
        scheme, n_text, r_text, p_text, salt_text, hash_text = encoded.split("$")
        n, r, p = int(n_text), int(r_text), int(p_text)
        salt = base64.b64decode(salt_text, validate=True)
        expected = base64.b64decode(hash_text, validate=True)
    except (ValueError, binascii.Error):
        return False
    if scheme != "scrypt" or not (1 < n <= _MAX_N and 0 < r <= 32 and 0 < p <= 16 and expected):
        return False
    try:
        digest = hashlib.scrypt(
            password.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=_MAXMEM, dklen=len(expected)
        )
    except ValueError:  # parameters scrypt refuses (n not a power of 2, over the memory cap)
        return False
    return hmac.compare_digest(digest, expected)


_DUMMY_HASH: str | None = None


def _dummy_hash() -> str:
    """A hash to check unknown names against, so they cost what a real check costs."""
    global _DUMMY_HASH
    if _DUMMY_HASH is None:
        _DUMMY_HASH = hash_password(secrets.token_urlsafe(16))
    return _DUMMY_HASH


def check_new_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_CHARS:
        raise UsageError(f"the password must have at least {MIN_PASSWORD_CHARS} characters")
    if password != password.strip():
        raise UsageError("the password must not start or end with a space")


# -- admins --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AdminInfo:
    name: str
    created_at: dt.datetime
    failed_logins: int
    locked_until: dt.datetime | None


def add_admin(
    store: Store, name: str, password: str, *, reset: bool = False, actor: str = "cli"
) -> bool:
    """Create admin ``name`` (with ``reset``: or give an existing one a new password and
    unlock it). Returns True when the admin is new. Audited; the password only as a hash."""
    if not valid_admin_name(name):
        raise UsageError(
            f"invalid admin name {name!r}: 1-64 letters, digits or _ . @ -, starting with a "
            "letter or digit"
        )
    check_new_password(password)
    hashed = hash_password(password)
    with store.session() as s:
        row = s.get(ConsoleAdminRow, name)
        if row is not None and not reset:
            raise UsageError(
                f"admin {name!r} exists already: `briefbot console add-admin {name} --reset` "
                "gives it a new password"
            )
        if row is None:
            s.add(ConsoleAdminRow(name=name, password_hash=hashed, failed_logins=0))
        else:
            row.password_hash, row.failed_logins, row.locked_until = hashed, 0, None
        s.add(
            AuditRow(
                actor=actor,
                action="add_admin" if row is None else "reset_admin",
                subject=name,
                detail={},
            )
        )
    return row is None


def list_admins(store: Store) -> list[AdminInfo]:
    with store.session() as s:
        rows = s.scalars(select(ConsoleAdminRow).order_by(ConsoleAdminRow.name))
        return [
            AdminInfo(
                r.name,
                aware(r.created_at),
                r.failed_logins,
                aware(r.locked_until) if r.locked_until else None,
            )
            for r in rows
        ]


def password_fingerprint(secret: bytes, password_hash: str) -> str:
    """A short keyed digest of an admin's password hash, carried in the session: a new
    password ends every session given before it."""
    return _b64(hmac.new(secret, b"pw\x00" + password_hash.encode(), hashlib.sha256).digest()[:9])


def admin_fingerprint(store: Store, secret: bytes, name: str) -> str | None:
    """The current fingerprint of ``name`` (None: no such admin any more)."""
    with store.session() as s:
        hashed = s.scalar(select(ConsoleAdminRow.password_hash).where(ConsoleAdminRow.name == name))
    return None if hashed is None else password_fingerprint(secret, hashed)


class LoginOutcome(StrEnum):
    OK = "ok"
    WRONG = "wrong"  # wrong name or password (the two are not told apart)
    LOCKED = "locked"  # too many failures: refused without checking the password


@dataclass(frozen=True, slots=True)
class LoginResult:
    outcome: LoginOutcome
    known: bool  # the name is an admin (for the caller's own throttle of unknown names)
    fingerprint: str = ""  # of the password hash (only when OK)


def attempt_login(
    store: Store,
    secret: bytes,
    name: str,
    password: str,
    now: dt.datetime,
    *,
    max_failures: int = NAME_MAX_FAILURES,
    lock_time: dt.timedelta = LOCK_TIME,
) -> LoginResult:
    """Check a login and count it: ``max_failures`` wrong passwords in a row lock the name
    for ``lock_time`` (stored, so a restart does not reset it). Blocking (scrypt, the
    store): run it in a thread."""
    row = None
    if valid_admin_name(name):
        with store.session() as s:
            row = s.get(ConsoleAdminRow, name)
    if row is None:
        verify_password(password, _dummy_hash())  # the same cost as for a real name
        return LoginResult(LoginOutcome.WRONG, known=False)
    if row.locked_until is not None and aware(row.locked_until) > now:
        return LoginResult(LoginOutcome.LOCKED, known=True)
    if verify_password(password, row.password_hash):
        with store.session() as s:
            s.execute(
                update(ConsoleAdminRow)
                .where(ConsoleAdminRow.name == name)
                .values(failed_logins=0, locked_until=None)
            )
        return LoginResult(
            LoginOutcome.OK, known=True, fingerprint=password_fingerprint(secret, row.password_hash)
        )
    with store.session() as s:
        # one statement: two wrong guesses at once both count
        s.execute(
            update(ConsoleAdminRow)
            .where(ConsoleAdminRow.name == name)
            .values(failed_logins=ConsoleAdminRow.failed_logins + 1)
        )
        failures = s.scalar(
            select(ConsoleAdminRow.failed_logins).where(ConsoleAdminRow.name == name)
        )
        if failures is not None and failures >= max_failures:
            s.execute(
                update(ConsoleAdminRow)
                .where(ConsoleAdminRow.name == name)
                .values(failed_logins=0, locked_until=now + lock_time)
            )
            s.add(
                AuditRow(
                    actor=f"console:{name}",
                    action="login_locked",
                    subject=name,
                    detail={"failures": failures, "minutes": lock_time.total_seconds() / 60},
                )
            )
            return LoginResult(LoginOutcome.LOCKED, known=True)
    return LoginResult(LoginOutcome.WRONG, known=True)


class Throttle:
    """Failed attempts per key (a client address, an unknown name) in memory: ``limit``
    failures within ``window`` lock the key for ``window``. Bounded: the oldest keys go."""

    def __init__(
        self, limit: int, window: dt.timedelta = LOCK_TIME, *, max_keys: int = 10_000
    ) -> None:
        self.limit = limit
        self.window = window.total_seconds()
        self.max_keys = max_keys
        self._failures: dict[str, list[float]] = {}
        self._locked: dict[str, float] = {}

    def locked(self, key: str, now: float) -> bool:
        until = self._locked.get(key)
        if until is None:
            return False
        if until <= now:
            del self._locked[key]
            return False
        return True

    def failure(self, key: str, now: float) -> bool:
        """Count a failure; True when the key is locked now."""
        recent = [t for t in self._failures.get(key, []) if t > now - self.window]
        recent.append(now)
        if len(recent) >= self.limit:
            self._failures.pop(key, None)
            self._locked[key] = now + self.window
            while len(self._locked) > self.max_keys:
                del self._locked[next(iter(self._locked))]
            return True
        self._failures[key] = recent
        while len(self._failures) > self.max_keys:
            del self._failures[next(iter(self._failures))]
        return False


# -- the secret ----------------------------------------------------------------------------


def load_secret(settings: Settings, environ: Mapping[str, str]) -> bytes:
    """The key that signs sessions: ``$BRIEFBOT_CONSOLE_SECRET``, else a random one made
    once and kept in ``<data_dir>/console.secret`` (mode 0600)."""
    from_env = environ.get(SECRET_ENV, "")
    if from_env:
        if len(from_env) < MIN_SECRET_CHARS:
            raise ConfigError(
                f"{SECRET_ENV} must have at least {MIN_SECRET_CHARS} characters "
                '(python3 -c "import secrets; print(secrets.token_hex(32))")'
            )
        return from_env.encode("utf-8")
    path = Path(settings.store.data_dir).expanduser() / SECRET_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(descriptor, "w", encoding="ascii") as file:
            file.write(secrets.token_hex(32) + "\n")
    if path.stat().st_mode & 0o077:
        path.chmod(0o600)  # a copy or a restore widened it: the key signs every login
    text = path.read_text(encoding="ascii").strip()
    if len(text) < MIN_SECRET_CHARS:
        raise ConfigError(
            f"{path} holds no usable console secret: delete it (every editor logs in again) "
            f"or set {SECRET_ENV}"
        )
    return text.encode("ascii")


# -- sessions and CSRF ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Session:
    """A logged-in admin, as the signed cookie says."""

    name: str
    sid: str  # random, per login: what a logout revokes and CSRF tokens are bound to
    expires: float  # Unix seconds
    fingerprint: str  # of the password hash at login


class Signer:
    """Signs and checks session cookies and CSRF tokens with keys derived from one secret."""

    def __init__(self, secret: bytes) -> None:
        self.secret = secret
        self._session_key = hmac.new(secret, b"briefbot console session", hashlib.sha256).digest()
        self._csrf_key = hmac.new(secret, b"briefbot console csrf", hashlib.sha256).digest()

    def _sign(self, key: bytes, payload: str) -> str:
        return _b64(hmac.new(key, payload.encode("ascii"), hashlib.sha256).digest())

    def new_session(self, name: str, fingerprint: str, expires: float) -> tuple[str, Session]:
        """A new session and its cookie value ``payload.signature``."""
        session = Session(name, secrets.token_urlsafe(16), expires, fingerprint)
        data = {"n": name, "s": session.sid, "e": int(expires), "f": fingerprint}
        payload = _b64(json.dumps(data, separators=(",", ":")).encode("utf-8"))
        return f"{payload}.{self._sign(self._session_key, payload)}", session

    def read_session(self, value: str, now: float) -> Session | None:
        """The session a cookie value carries, if its signature is ours and it has not
        expired (the caller checks revocation and the admin)."""
        payload, dot, signature = value.partition(".")
        if not dot or not payload.isascii() or not signature.isascii():
            return None
        if not hmac.compare_digest(signature, self._sign(self._session_key, payload)):
            return None
        try:
            data = json.loads(_unb64(payload))
            session = Session(str(data["n"]), str(data["s"]), float(data["e"]), str(data["f"]))
        except (ValueError, KeyError, TypeError, binascii.Error):
            return None
        return session if session.expires > now else None

    def csrf_token(self, bound_to: str) -> str:
        """The token forms of a session (``bound_to``: its sid) or of the login page
        (``login:<nonce>``) must send back."""
        return self._sign(self._csrf_key, bound_to)

    def check_csrf(self, bound_to: str, token: str) -> bool:
        if not token.isascii():
            return False
        return hmac.compare_digest(token, self.csrf_token(bound_to))
