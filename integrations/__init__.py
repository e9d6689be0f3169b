"""Bridges to other ecosystems, imported as ``dreamgym_sdk.integrations.<name>``.

This folder sits at the top of the repository and is mapped onto the ``dreamgym_sdk.integrations``
package by the build (see setup.py). Each integration needs only its own extra, e.g.
``pip install 'dreamgym-sdk[textworld]'`` for ``dreamgym_sdk.integrations.textworld``.
"""
