"""The command line: click commands that parse flags, call the engine and print.

Owns the command group and logging (``main``), one module per command (``plan``, ``apply``,
``drift``, ``validate``, ``export``, ``state``, ``emulator``), the flags they share (``options``,
``common``) and everything printed while they work (``console``: errors, progress, summaries,
always redacted). Only this layer prints and turns errors into exit statuses.

May import anything below it.
"""
