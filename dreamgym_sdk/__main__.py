"""``python -m dreamgym_sdk``: the ``dreamgym`` command line."""

from dreamgym_sdk.cli import app

app(prog_name="dreamgym")
