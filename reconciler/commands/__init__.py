"""One module per command of the ``reconciler`` command line; ``cli.py`` groups them."""
