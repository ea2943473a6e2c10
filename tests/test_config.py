"""Settings: TOML file, environment overrides, secrets only from the environment."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from bot.config import load_settings
from bot.errors import ConfigError

REPO = Path(__file__).resolve().parent.parent


def test_documented_example_loads_and_equals_defaults() -> None:
    example = load_settings(REPO / "config" / "briefbot.toml", environ={})
    defaults = load_settings(None, environ={})
    assert example.platforms == defaults.platforms
    assert example.brief == defaults.brief
    # the one deliberate difference: new configs ask for approval; the default (a config
    # without the key, as the first wave's) keeps sending unapproved briefs
    assert example.schedule == dataclasses.replace(defaults.schedule, require_approval=True)
    assert example.site == defaults.site and example.console == defaults.console


def test_file_then_environment(tmp_path: Path) -> None:
    cfg = tmp_path / "b.toml"
    cfg.write_text(
        '[telegram]\nadmins = [1, 2]\nglobal_rate = 10\n[[telegram.channels]]\nchat = "@ai"\n'
        '[wechat]\nadmins = ["wxid_a"]\n[[wechat.groups]]\ntopic = "AI简报交流群"\n',
        encoding="utf-8",
    )
    env = {
        "BRIEFBOT_TELEGRAM_GLOBAL_RATE": "100",
        "BRIEFBOT_DATABASE_URL": "sqlite:///x.db",
        "BRIEFBOT_WECHAT_PREFIXES": "#, 查",
    }
    s = load_settings(cfg, environ=env)
    assert s.platform("telegram").admins == (1, 2)
    assert s.platform("telegram").global_rate == 100.0
    assert s.platform("telegram").channels[0].chat == "@ai"
    assert s.platform("wechat").groups[0].topic == "AI简报交流群"
    assert s.platform("wechat").prefixes == ("#", "查")
    assert s.store.resolved_url() == "sqlite:///x.db"


def test_config_path_from_environment(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text("[search]\nlimit = 9\n", encoding="utf-8")
    assert load_settings(None, environ={"BRIEFBOT_CONFIG": str(cfg)}).search.limit == 9


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("[telegram\n", "invalid TOML"),
        ("[nope]\n", "unknown section [nope]"),
        ("[telegram]\nchanels = []\n", "unknown setting [telegram] chanels"),
        ("[telegram]\nadmins = ['@boss']\n", "expected a whole number"),
        ("[search]\nlimit = 'many'\n", "expected a whole number"),
        ("[brief]\ntimezone = 'Mars/Base'\n", "unknown time zone"),
    ],
)
def test_bad_settings_name_file_and_setting(tmp_path: Path, body: str, message: str) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text(body, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_settings(cfg, environ={})
    assert message in str(info.value)
    if "time zone" not in message:
        assert str(cfg) in str(info.value)


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_settings(tmp_path / "missing.toml", environ={})


def test_tokens_only_from_environment_and_never_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BRIEFBOT_TELEGRAM_TOKEN", "123:SECRET")
    s = load_settings(None)
    assert s.secret_values("telegram") == {"BRIEFBOT_TELEGRAM_TOKEN": "123:SECRET"}
    token = s.secrets["BRIEFBOT_TELEGRAM_TOKEN"]
    assert "SECRET" not in repr(token) and "SECRET" not in str(token)
    assert "SECRET" not in repr(s)


def test_a_setting_a_platform_took_over_still_works_where_it_was(tmp_path: Path) -> None:
    cfg = tmp_path / "old.toml"
    cfg.write_text("[render]\nwechat_max_length = 900\n", encoding="utf-8")
    assert load_settings(cfg, environ={}).platform("wechat").max_length == 900
    cfg.write_text(
        "[render]\nwechat_max_length = 900\n[wechat]\nmax_length = 800\n", encoding="utf-8"
    )
    with pytest.raises(
        ConfigError, match=r"\[render\] wechat_max_length is now \[wechat\] max_length"
    ):
        load_settings(cfg, environ={})


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("[telegram]\nglobal_rate = 0\n", "[telegram] global_rate must be greater than 0"),
        ("[delivery]\nmax_attempts = 0\n", "[delivery] max_attempts must be at least 1"),
        ("[wechat]\njitter = -1\n", "[wechat] jitter must be at least 0"),
        ("[[wechat.groups]]\nschedule = '09:00'\n", "entry 1 needs an id or a topic"),
        ("[telegram]\ntoken = '123:abc'\n", "only from the environment (BRIEFBOT_TELEGRAM_TOKEN)"),
    ],
)
def test_values_out_of_range_are_refused(tmp_path: Path, body: str, message: str) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text(body, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_settings(cfg, environ={})
    assert message in str(info.value)
    assert "123:abc" not in str(info.value)


def test_a_bad_environment_value_names_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"\$BRIEFBOT_TELEGRAM_ADMINS"):
        load_settings(None, environ={"BRIEFBOT_TELEGRAM_ADMINS": "@alice"})
    settings = load_settings(None, environ={"BRIEFBOT_TELEGRAM_ADMINS": "1, 2"})
    assert settings.platform("telegram").admins == (1, 2)


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_non_finite_numbers_are_refused(value: str) -> None:
    with pytest.raises(ConfigError, match="finite"):
        load_settings(None, environ={"BRIEFBOT_WECHAT_GLOBAL_RATE": value})


@pytest.mark.parametrize(
    ("text", "env", "message"),
    [
        # a misspelt variable is reported, as a misspelt key in the file is
        ("", {"BRIEFBOT_TELEGRAM_GLOBALRATE": "3"}, "did you mean BRIEFBOT_TELEGRAM_GLOBAL_RATE?"),
        ("", {"BRIEFBOT_TELGRAM_TOKEN": "x"}, "did you mean BRIEFBOT_TELEGRAM_TOKEN?"),
        # a range error names where the value came from
        ("", {"BRIEFBOT_DELIVERY_MAX_ATTEMPTS": "0"}, "$BRIEFBOT_DELIVERY_MAX_ATTEMPTS must be"),
        ('[brief]\ntitle_pattern = "{foo} {date}"\n', {}, "unknown placeholder {foo}"),
        (
            '[[telegram.channels]]\nschedule = "08:00"\n',
            {},
            "[[telegram.channels]] entry 1 needs chat",
        ),
    ],
)
def test_mistakes_in_settings_are_named(
    tmp_path: Path, text: str, env: dict[str, str], message: str
) -> None:
    cfg = tmp_path / "b.toml"
    cfg.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as raised:
        load_settings(cfg, environ=env)
    assert message in str(raised.value)
    assert "TypeError" not in str(raised.value)
    if env:  # the variable is named, not the file it did not come from
        assert "b.toml" not in str(raised.value)


def test_variables_that_are_not_settings_are_accepted(tmp_path: Path) -> None:
    env = {
        "BRIEFBOT_TEST_DATABASE_URL": "postgresql://x",
        "BRIEFBOT_CONSOLE_SECRET": "s",
        "BRIEFBOT_WECOM_WEBHOOK_OPS": "key",
        "BRIEFBOT_DATABASE_URL": "sqlite:///x.db",
    }
    assert load_settings(None, environ=env).store.url == "sqlite:///x.db"
