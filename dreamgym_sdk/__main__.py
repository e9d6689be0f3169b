"""``python -m dreamgym_sdk``: the ``dreamgym`` command line."""

from dreamgym_sdk.cli import app

if __name__ == "__main__":  # importing this module (tools that walk the package do) runs nothing
    app(prog_name="dreamgym")
