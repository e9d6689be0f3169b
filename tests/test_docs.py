"""Every Python code block in the README and the docs runs, as written.

The blocks of one page run in order as one script (later blocks may use names from earlier ones), in a
fresh interpreter and an empty working directory. A block whose title starts with "needs" (for example
```` ```python title="needs an API key" ````) shows something this machine cannot run and is skipped.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FENCE = re.compile(r"^```python([^\n]*)\n(.*?)^```", re.S | re.M)
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def runnable_blocks(page: Path) -> list[str]:
    blocks = []
    for info, body in FENCE.findall(page.read_text()):
        title = re.search(r'title="([^"]*)"', info)
        if title and title.group(1).lower().startswith("needs"):
            continue
        blocks.append(body)
    return blocks


PAGES_WITH_CODE = [p for p in PAGES if runnable_blocks(p)]


@pytest.mark.parametrize("page", PAGES_WITH_CODE, ids=lambda p: str(p.relative_to(ROOT)))
def test_code_blocks_run(page: Path, tmp_path: Path) -> None:
    script = "\n\n".join(runnable_blocks(page))
    (tmp_path / "page.py").write_text(script)
    result = subprocess.run(
        [sys.executable, "page.py"], cwd=tmp_path, capture_output=True, text=True, timeout=600, check=False
    )
    assert result.returncode == 0, f"{page.name} failed:\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}"


def test_readme_example_is_among_them() -> None:
    assert ROOT / "README.md" in PAGES_WITH_CODE
