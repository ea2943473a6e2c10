"""Render briefs and replies per platform through Jinja2 templates, split to its limits."""

from bot.render.environment import default_template_dir, known_formats, make_environment
from bot.render.length import measure, utf16_len
from bot.render.renderer import Renderer
from bot.render.split import BLOCK_BREAK, split_rendered

__all__ = [
    "BLOCK_BREAK",
    "Renderer",
    "default_template_dir",
    "known_formats",
    "make_environment",
    "measure",
    "split_rendered",
    "utf16_len",
]
