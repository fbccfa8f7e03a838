"""The one way platformctl runs git (`--base`, the synced applications at a revision, release
records' source commits)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any


def git(root: Path, *args: str, text: bool = True) -> subprocess.CompletedProcess[Any]:
    """`git -C root ...`, its output captured."""
    return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=text,
                          timeout=120, check=False)
