"""Bridges to other ecosystems, imported as ``dreamgym_sdk.integrations.<name>``.

This folder sits at the top of the repository; the symlink ``dreamgym_sdk/integrations`` makes it the
``dreamgym_sdk.integrations`` package for imports, wheels and type checkers. Each integration needs
only its own extra, e.g. ``pip install 'dreamgym-sdk[textworld]'`` for
``dreamgym_sdk.integrations.textworld``.
"""
