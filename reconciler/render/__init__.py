"""Output formats: the plan, a failure, validation results and apply's report as people and
machines read them.

One module per format: ``text`` (a terminal, a CI log), ``markdown`` (the pull-request
comment, with its one-line-per-change list in ``changelist`` and its escaping in ``mdsafe``),
``json`` (the saved plan's own text, validation, failures, the apply report), ``github``
(workflow commands that annotate a diff) and ``gitlab`` (a Code Quality report that a merge
request shows at its lines); ``layout`` holds what the plan formats share and ``formats``
picks one by name. A renderer only reads its input and returns a string:
no network, no files, no terminal. Everything shown is untrusted text from the API or the
specs, escaped for where it is shown.

May import: ``run.results`` (what apply did), ``core``, ``spec``, ``api``, ``state`` and the
foundation; never the command line.
"""

#: The plan's ``--format`` choices, in the order ``--help`` lists them (``formats.FORMATS``
#: maps each to its renderer); here so that building the options imports no renderer.
FORMAT_NAMES = ("text", "markdown", "json")
