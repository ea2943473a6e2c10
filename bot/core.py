"""The platform-neutral pieces every entry point needs: settings, store, renderer."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from bot.config import Settings
from bot.logs import register_secrets
from bot.platforms import spec
from bot.platforms.base import ChatRules, Limits
from bot.render import Renderer
from bot.store import Store

if TYPE_CHECKING:
    from bot.search import SearchPage
    from bot.search.aliases import Aliases


@dataclass
class Core:
    """Settings, store and renderer, plus what the registry says about each platform."""

    settings: Settings
    store: Store
    renderer: Renderer
    _aliases: Aliases | None = field(default=None, init=False, repr=False)

    def today(self) -> dt.date:
        return dt.datetime.now(self.settings.tz).date()

    def limits(self, platform: str) -> Limits:
        return platform_limits(self.settings, platform)

    def rules(self, platform: str) -> ChatRules:
        return spec(platform).rules(self.settings.platform(platform))

    @property
    def aliases(self) -> Aliases:
        if self._aliases is None:
            from bot.search.aliases import Aliases

            config = self.settings.search
            self._aliases = Aliases.from_settings(config.aliases, defaults=config.default_aliases)
        return self._aliases

    def search(self, query: str, *, limit: int | None = None, offset: int = 0) -> SearchPage:
        """Search the store with the settings' limit, query length and aliases."""
        from bot.search import search_page

        config = self.settings.search
        return search_page(
            self.store,
            query,
            limit=config.limit if limit is None else limit,
            offset=offset,
            max_length=config.max_query_length,
            aliases=self.aliases,
        )


def platform_limits(settings: Settings, platform: str) -> Limits:
    """A platform's declared limits with the rates and lengths its settings override."""
    return spec(platform).limits(settings.platform(platform))


def build_core(settings: Settings, *, database_url: str | None = None) -> Core:
    register_secrets(settings.all_secrets())
    store = Store.open(database_url or settings.store.resolved_url())
    template_dir = Path(settings.render.template_dir) if settings.render.template_dir else None
    return Core(settings=settings, store=store, renderer=Renderer(template_dir))
