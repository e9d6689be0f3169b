"""Package discovery: `dreamgym_sdk/` as is, and the top-level `integrations/` folder mapped to
`dreamgym_sdk.integrations`, so users never import a top-level module named `integrations`.
Everything else lives in pyproject.toml."""

from setuptools import find_packages, setup

integrations = ["dreamgym_sdk.integrations"] + [
    f"dreamgym_sdk.integrations.{name}" for name in find_packages("integrations")
]
setup(
    packages=find_packages(include=["dreamgym_sdk", "dreamgym_sdk.*"]) + integrations,
    package_dir={"dreamgym_sdk": "dreamgym_sdk", "dreamgym_sdk.integrations": "integrations"},
)
