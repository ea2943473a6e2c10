"""The editors' web console: a small server-rendered app to edit, preview, approve and follow
a day's brief (``briefbot console``, or served by ``briefbot run`` at ``[console] listen``).

Its parts: :mod:`~bot.console.auth` (admins, passwords, sessions, CSRF, login throttling),
:mod:`~bot.console.editing` (item changes, each audited), :mod:`~bot.console.views` (what the
pages show), :mod:`~bot.console.server` (the aiohttp app) and :mod:`~bot.console.cli` (the
``console`` verb). This package imports nothing at its top, so building the CLI's parser
stays light; import :class:`bot.console.server.ConsoleServer` from its module.
"""
