"""Answering people: the command table and router, the short texts, the cooldowns."""

from bot.chat.router import COMMANDS, ChatCommand, Commands

__all__ = ["COMMANDS", "ChatCommand", "Commands"]
