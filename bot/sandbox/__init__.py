"""Loopback stand-ins for the chat platforms, shared by tests, the demo and benchmarks.

Import from the submodules (``bot.sandbox.telegram_api`` …): importing this package stays
cheap and does not load a platform's server, so ``python -m bot.sandbox.telegram_api`` runs
cleanly.
"""
