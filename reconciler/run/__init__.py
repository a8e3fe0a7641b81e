"""Running a command end to end: the engine and the parts that touch the world.

Owns the engine (``engine``: one owner of every command's pipeline, from settings to result;
the settings themselves in ``settings``, light enough for commands that need no engine),
reading the API for a plan (``refresh``), the specs at a git revision (``revision``), saved
plans as apply and show take them (``savedplan``), which state owns an AOI (``owners``),
carrying a plan out (``apply``), the writes besides creates and what their records need read
back (``metadata``: custom indices, rollbacks, custom legends), what apply did (``results``),
progress as typed events (``events``), what stop signals do (``signals``), the ``state``
commands' changes to a state (``statecmds``), where ``export``
writes (``exporting``), files written for others to read (``output``) and the in-process
emulator behind ``--sandbox`` (``sandbox``).

May import: ``core``, ``spec``, ``api``, ``state``, the emulator (for the sandbox) and the
foundation; never ``render`` or the command line: it returns data, others show it.
"""
