"""The test suite, a package so that pytest and mypy both import its helpers as ``tests.*``.

``conftest.py`` holds the shared fixtures (emulators, the hostile server, S3 servers, the API
contract); ``planning.py`` the demo world's ids, specs built from named pieces, and helpers that
plan, apply and run the command line; ``hostile.py`` a misbehaving HTTP server; and
``ci_runners.py`` the example pipelines' jobs, run locally.
"""
