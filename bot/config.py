"""Typed settings: a TOML file, then BRIEFBOT_* environment overrides; secrets only from the env."""

from __future__ import annotations

import math
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.errors import ConfigError

ENV_PREFIX = "BRIEFBOT_"
DEFAULT_CONFIG_PATHS = (Path("config/briefbot.toml"),)


class Secret:
    """A token read from the environment; its repr and str never show the value."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __repr__(self) -> str:
        return "Secret('***')" if self._value else "Secret('')"

    __str__ = __repr__


@dataclass(frozen=True)
class StoreSettings:
    url: str = ""  # any SQLAlchemy URL; empty means a SQLite file in data_dir
    data_dir: str = "data"

    def resolved_url(self) -> str:
        if self.url:
            return self.url
        return f"sqlite:///{Path(self.data_dir).expanduser() / 'briefbot.db'}"


@dataclass(frozen=True)
class BriefSettings:
    timezone: str = "Asia/Shanghai"
    # placeholders: {yyyymmdd}, {date} (YYYY-MM-DD) and {headlines}
    title_pattern: str = "【AI简报{yyyymmdd}】{headlines}"
    title_headlines: int = 2
    headline_separator: str = "、"
    intro: str = ""
    footer: str = ""


@dataclass(frozen=True)
class RenderSettings:
    template_dir: str = ""


@dataclass(frozen=True)
class SearchSettings:
    limit: int = 5
    # a longer query is cut to this many characters (not refused)
    max_query_length: int = 64
    # groups of terms that mean the same (["扩散模型", "diffusion"]), added to the defaults
    aliases: tuple[tuple[str, ...], ...] = ()
    # the built-in table of the field's pairs (芯片 ↔ chip, 大模型 ↔ LLM …): bot/search/aliases.py
    default_aliases: bool = True


@dataclass(frozen=True)
class DeliverySettings:
    max_attempts: int = 5
    backoff_base: float = 1.0  # seconds; doubled on each transient failure
    backoff_max: float = 60.0
    max_retry_after: float = 3600.0  # a 429 asking to wait longer than this fails the delivery
    # requests in flight per platform: rate x round trip, with room (30 msg/s at 0.5 s needs 15)
    max_in_flight: int = 24


@dataclass(frozen=True)
class ScheduleSettings:
    default: str = "08:00"
    timezone: str = "Asia/Shanghai"
    misfire_grace: int = (
        3600  # seconds late a send may still start (a restart at 08:40 still sends)
    )
    catch_up_days: int = 0  # 0: never send an older day's brief late
    # scheduled sends go out only for a brief an editor approved (`briefbot approve`,
    # /approve); the example config turns it on, the default keeps the first wave's behaviour
    require_approval: bool = False


@dataclass(frozen=True)
class ConsoleSettings:
    """The editors' web console."""

    # where `briefbot run` serves it ("127.0.0.1:8081"); empty: not served
    listen: str = ""
    # hours a login lasts
    session_hours: float = 12.0


@dataclass(frozen=True)
class EditorsSettings:
    """Where editors are told things and test sends go: one chat on one platform."""

    platform: str = ""  # a chat platform's name; empty: each platform's admins, privately
    chat: str = ""  # the editors' chat id there


@dataclass(frozen=True)
class SiteSettings:
    """The public archive: a static site of published briefs, with feeds."""

    # where `briefbot run` serves it ("127.0.0.1:8080"); empty: not served
    listen: str = ""
    # the public address the site is reached at (feeds need absolute links); empty: from listen
    base_url: str = ""
    # where `briefbot run` writes it; relative paths are inside [store] data_dir
    out_dir: str = "site"
    title: str = "AI 简报"
    description: str = "每日 AI 新闻简报 · A daily AI news brief"
    # the language of the site's own words (zh or en); content is shown as written
    language: str = "zh"
    # briefs in each feed, newest first
    feed_briefs: int = 30


@dataclass(frozen=True)
class Settings:
    """Every setting. Platform sections (``[telegram]``, ``[wechat]`` …) are typed by their
    registry entry and kept in ``platforms``; the core reads them only through that entry."""

    store: StoreSettings = field(default_factory=StoreSettings)
    brief: BriefSettings = field(default_factory=BriefSettings)
    render: RenderSettings = field(default_factory=RenderSettings)
    search: SearchSettings = field(default_factory=SearchSettings)
    delivery: DeliverySettings = field(default_factory=DeliverySettings)
    schedule: ScheduleSettings = field(default_factory=ScheduleSettings)
    site: SiteSettings = field(default_factory=SiteSettings)
    editors: EditorsSettings = field(default_factory=EditorsSettings)
    console: ConsoleSettings = field(default_factory=ConsoleSettings)
    platforms: Mapping[str, Any] = field(default_factory=dict)
    # secrets by environment variable name, read once from the environment given
    secrets: Mapping[str, Secret] = field(default_factory=lambda: read_secrets(os.environ))
    source: str = "defaults"

    def platform(self, name: str) -> Any:
        """The settings section of platform ``name`` (its defaults if the file has none)."""
        found = self.platforms.get(name)
        if found is not None:
            return found
        from bot.platforms import spec

        return spec(name).settings_type()

    def secret_values(self, name: str) -> dict[str, str]:
        """Platform ``name``'s secrets in clear, for its ``build`` and nothing else."""
        from bot.platforms import spec

        entry = spec(name)
        values = {env: self.secrets.get(env, Secret("")).reveal() for env in entry.secret_env}
        if entry.secret_prefixes:
            values.update(
                (env, secret.reveal())
                for env, secret in self.secrets.items()
                if env.startswith(entry.secret_prefixes) and secret
            )
        return values

    def all_secrets(self) -> list[str]:
        """Every secret value, for redaction."""
        return [s.reveal() for s in self.secrets.values() if s]

    @property
    def tz(self) -> ZoneInfo:
        return _zone(self.brief.timezone, "brief.timezone")


_SECTIONS: dict[str, type] = {
    "store": StoreSettings,
    "brief": BriefSettings,
    "render": RenderSettings,
    "search": SearchSettings,
    "delivery": DeliverySettings,
    "schedule": ScheduleSettings,
    "site": SiteSettings,
    "editors": EditorsSettings,
    "console": ConsoleSettings,
}
# Settings whose environment override has a shorter, conventional name.
_ENV_ALIASES = {"DATABASE_URL": ("store", "url")}


def read_secrets(environ: Mapping[str, str]) -> dict[str, Secret]:
    """The secrets every known platform declares, from ``environ``."""
    from bot.platforms import specs

    names = [env for spec in specs().values() for env in spec.secret_env]
    prefixes = tuple(p for spec in specs().values() for p in spec.secret_prefixes)
    if prefixes:
        names += [name for name in environ if name.startswith(prefixes)]
    # stripped: a value pasted with a trailing newline is still recognised in a log line
    return {name: Secret(environ.get(name, "").strip()) for name in names}


def _sections() -> dict[str, type]:
    from bot.platforms import specs

    return {**_SECTIONS, **{name: spec.settings_type for name, spec in specs().items()}}


def _table_lists(section: str) -> Mapping[str, type]:
    from bot.platforms import specs

    found = specs().get(section)
    return found.table_lists if found is not None else {}


def parse_listen(listen: str) -> tuple[str, int]:
    """``[site] listen`` (``127.0.0.1:8080``, ``[::1]:8080``) as a host and a port."""
    host, colon, port = listen.strip().rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not colon or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(
            f"[site] listen must be host:port, such as 127.0.0.1:8080, got {listen!r}"
        )
    return host, int(port)


def _secret_names(section: str) -> str:
    """The environment variables that hold a section's secrets, for an error message."""
    from bot.platforms import specs

    platform = section.split(".")[0]
    found = specs().get(platform)
    if found is None or not (found.secret_env or found.secret_prefixes):
        return f"BRIEFBOT_{platform.upper()}_TOKEN"
    return ", ".join([*found.secret_env, *(f"{p}<NAME>" for p in found.secret_prefixes)])


def _zone(name: str, setting: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(f"{setting}: unknown time zone {name!r}") from exc


def _coerce(value: Any, annotation: str, where: str) -> Any:
    """Check one TOML or environment value against a field's annotation (given as a string)."""
    if annotation.startswith("tuple["):
        inner = annotation[len("tuple[") : -len(", ...]")]
        if isinstance(value, str):  # from the environment: comma-separated
            value = [v.strip() for v in value.split(",") if v.strip()]
        if isinstance(value, tuple):  # already checked (an environment override)
            value = list(value)
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, got {type(value).__name__}")
        return tuple(_coerce(v, inner, f"{where}[{i}]") for i, v in enumerate(value))
    if annotation == "str":
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise ConfigError(f"{where}: expected text, got {type(value).__name__}")
        return str(value)
    if annotation == "bool":
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
            return value.lower() in ("true", "1", "yes")
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    if annotation == "int":
        if isinstance(value, str):
            try:
                return int(value)
            except ValueError as exc:
                raise ConfigError(f"{where}: expected a whole number, got {value!r}") from exc
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected a whole number, got {value!r}")
        return value
    if annotation == "float":
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError as exc:
                raise ConfigError(f"{where}: expected a number, got {value!r}") from exc
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        if not math.isfinite(value):
            raise ConfigError(f"{where}: expected a finite number, got {value!r}")
        return float(value)
    raise AssertionError(f"unhandled annotation {annotation}")  # pragma: no cover


def _build(cls: type, data: Mapping[str, Any], where: str, section: str) -> Any:
    known = {f.name: f for f in fields(cls)}
    tables = _table_lists(section)
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        if key not in known:
            if any(word in key for word in ("token", "secret", "webhook", "password")) or (
                key in ("key", "url") and "." in section
            ):
                raise ConfigError(
                    f"{where}: [{section}] {key}: secrets are read only from the environment "
                    f"({_secret_names(section)}), never from a file"
                )
            raise ConfigError(f"{where}: unknown setting [{section}] {key}")
        table_cls = tables.get(key)
        if table_cls is not None:
            if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
                raise ConfigError(f"{where}: [[{section}.{key}]] must be a list of tables")
            kwargs[key] = tuple(
                _build(table_cls, v, where, f"{section}.{key}[{i}]") for i, v in enumerate(value)
            )
        else:
            kwargs[key] = _coerce(value, str(known[key].type), f"{where}: [{section}] {key}")
    missing = [
        f.name
        for f in fields(cls)
        if f.default is MISSING and f.default_factory is MISSING and f.name not in kwargs
    ]
    if missing:  # a required field of a table: "[[telegram.channels]] entry 2 needs chat"
        table, _, index = section.partition("[")
        entry = f"[[{table}]] entry {int(index.rstrip(']')) + 1}" if index else f"[{table}]"
        raise ConfigError(f"{where}: {entry} needs {', '.join(missing)}")
    return cls(**kwargs)


# BRIEFBOT_* variables that are not settings: the config file's path, the console's cookie
# key, and the test suite's PostgreSQL database.
_OTHER_ENV = frozenset({"CONFIG", "CONSOLE_SECRET", "TEST_DATABASE_URL"})


def _env_overrides(environ: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    """BRIEFBOT_<SECTION>_<KEY> values, checked here so an error names the variable. A
    BRIEFBOT_* variable that is neither a setting nor a secret is an error, as a misspelt
    key in the file is: a typo must not silently leave a default in place."""
    from bot.platforms import specs

    sections = _sections()
    secrets = {env for spec in specs().values() for env in spec.secret_env}
    prefixes = tuple(p for spec in specs().values() for p in spec.secret_prefixes)
    out: dict[str, dict[str, Any]] = {}
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX):
            continue
        rest = name[len(ENV_PREFIX) :]
        if rest in _OTHER_ENV or name in secrets or (prefixes and name.startswith(prefixes)):
            continue
        if rest in _ENV_ALIASES:
            section, key = _ENV_ALIASES[rest]
        else:
            section, key = _env_setting(rest, sections)
            if not key:
                raise ConfigError(_unknown_variable(name, sections, secrets))
        annotation = {f.name: str(f.type) for f in fields(sections[section])}[key]
        out.setdefault(section, {})[key] = _coerce(value, annotation, f"${name}")
    return out


def _env_setting(rest: str, sections: Mapping[str, type]) -> tuple[str, str]:
    """The (section, key) a variable's name after BRIEFBOT_ sets, or ("", "")."""
    lowered = rest.lower()
    for section, cls in sections.items():
        if lowered.startswith(f"{section}_"):
            key = lowered[len(section) + 1 :]
            names = {f.name for f in fields(cls)}
            if key in names and key not in _table_lists(section):
                return section, key
    return "", ""


def _unknown_variable(name: str, sections: Mapping[str, type], secrets: set[str]) -> str:
    import difflib

    known = [f"{ENV_PREFIX}{rest}" for rest in (*_OTHER_ENV, *_ENV_ALIASES)] + sorted(secrets)
    known += [
        f"{ENV_PREFIX}{section.upper()}_{f.name.upper()}"
        for section, cls in sections.items()
        for f in fields(cls)
        if f.name not in _table_lists(section)
    ]
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.75)
    hint = f": did you mean {close[0]}?" if close else " (see config/briefbot.toml)"
    return f"${name} is not a briefbot setting{hint}"


def _move_settings(sections: dict[str, Any], source: str) -> None:
    """Settings a platform took over from a core section keep working where they were."""
    from bot.platforms import specs

    for name, spec in specs().items():
        for (old_section, old_key), new_key in spec.moved_settings.items():
            old = sections.get(old_section, {})
            if old_key in old:
                target = sections.setdefault(name, {})
                if new_key in target:
                    raise ConfigError(
                        f"{source}: [{old_section}] {old_key} is now [{name}] {new_key}; "
                        "both are set: keep only the latter"
                    )
                target[new_key] = old.pop(old_key)


def load_settings(
    path: str | Path | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Read settings from ``path`` (or BRIEFBOT_CONFIG, or config/briefbot.toml if present),
    then apply BRIEFBOT_<SECTION>_<KEY> environment overrides (and BRIEFBOT_DATABASE_URL)."""
    env = os.environ if environ is None else environ
    chosen = (
        Path(path)
        if path
        else (Path(env[f"{ENV_PREFIX}CONFIG"]) if env.get(f"{ENV_PREFIX}CONFIG") else None)
    )
    data: dict[str, Any] = {}
    source = "defaults"
    if chosen is None:
        chosen = next((p for p in DEFAULT_CONFIG_PATHS if p.is_file()), None)
    if chosen is not None:
        try:
            data = tomllib.loads(chosen.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise ConfigError(f"config file not found: {chosen}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{chosen}: invalid TOML: {exc}") from exc
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{chosen}: not UTF-8 text") from exc
        source = str(chosen)
    known = _sections()
    sections: dict[str, Any] = {}
    for name, value in data.items():
        if name not in known:
            raise ConfigError(f"{source}: unknown section [{name}]")
        if not isinstance(value, dict):
            raise ConfigError(f"{source}: [{name}] must be a table")
        sections[name] = dict(value)
    _move_settings(sections, source)
    overrides = _env_overrides(env)
    for section, values in overrides.items():
        sections.setdefault(section, {}).update(values)
    built = {name: _build(cls, sections.get(name, {}), source, name) for name, cls in known.items()}
    core = {name: built.pop(name) for name in _SECTIONS}
    settings = Settings(**core, platforms=built, secrets=read_secrets(env), source=source)
    _zone(settings.brief.timezone, "[brief] timezone")
    _zone(settings.schedule.timezone, "[schedule] timezone")
    from_env = {(section, key) for section, values in overrides.items() for key in values}
    _check_ranges(settings, source, from_env)
    _check_title_pattern(settings.brief.title_pattern, source, from_env)
    return settings


_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
TITLE_PLACEHOLDERS = ("yyyymmdd", "date", "headlines")


def _check_title_pattern(pattern: str, source: str, from_env: set[tuple[str, str]]) -> None:
    for name in _PLACEHOLDER.findall(pattern):
        if name not in TITLE_PLACEHOLDERS:
            where = _where(source, "brief", "title_pattern", from_env)
            known = ", ".join(f"{{{p}}}" for p in TITLE_PLACEHOLDERS)
            raise ConfigError(f"{where}: unknown placeholder {{{name}}} (use {known})")


def _where(source: str, section: str, name: str, from_env: set[tuple[str, str]]) -> str:
    """Where a setting's value came from: its environment variable, or the file."""
    if (section, name) in from_env:
        return f"${ENV_PREFIX}{section.upper()}_{name.upper()}"
    return f"{source}: [{section}] {name}"


# (section, setting, smallest allowed value, whether that value itself is allowed)
_RANGES = (
    ("delivery", "max_attempts", 1, True),
    ("delivery", "backoff_base", 0, True),
    ("delivery", "backoff_max", 0, True),
    ("delivery", "max_retry_after", 0, True),
    ("delivery", "max_in_flight", 1, True),
    ("search", "limit", 1, True),
    ("search", "max_query_length", 1, True),
    ("brief", "title_headlines", 0, True),
    ("schedule", "misfire_grace", 1, True),
    ("schedule", "catch_up_days", 0, True),
    ("site", "feed_briefs", 1, True),
    ("console", "session_hours", 0, False),
)


def _check_ranges(
    settings: Settings, source: str, from_env: set[tuple[str, str]] | None = None
) -> None:
    from bot.platforms import specs

    checks: list[tuple[Any, str, str, float, bool]] = [
        (getattr(settings, section), section, name, low, inc) for section, name, low, inc in _RANGES
    ]
    for platform, spec in specs().items():
        section = settings.platform(platform)
        checks += [(section, platform, name, low, inc) for name, low, inc in spec.ranges]
    for values, section, name, low, inclusive in checks:
        value = getattr(values, name)
        if value < low or (value == low and not inclusive):
            bound = f"at least {low}" if inclusive else f"greater than {low}"
            where = _where(source, section, name, from_env or set())
            raise ConfigError(f"{where} must be {bound}, got {value}")
    for platform, spec in specs().items():
        spec.validate(settings.platform(platform), source)
    site = settings.site
    if site.listen:
        try:
            parse_listen(site.listen)
        except ConfigError as exc:
            raise ConfigError(f"{source}: {exc}") from None
    if settings.console.listen:
        try:
            parse_listen(settings.console.listen)
        except ConfigError as exc:
            raise ConfigError(f"{source}: {exc}".replace("[site]", "[console]")) from None
    if site.language not in ("zh", "en"):
        raise ConfigError(f"{source}: [site] language must be zh or en, not {site.language!r}")
    if site.base_url and not site.base_url.startswith(("http://", "https://")):
        raise ConfigError(
            f"{source}: [site] base_url must start with http:// or https://, not {site.base_url!r}"
        )
