"""briefbot: keep a daily AI news brief, render it per platform and deliver it."""

__version__ = "0.1.0"
