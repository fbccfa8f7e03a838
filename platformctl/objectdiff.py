"""Where two Kubernetes objects (or any two JSON-like values) differ, as field paths: what
`review --base` and `charts diff` show of a changed object."""

from __future__ import annotations

from typing import Any

MAX_PATHS = 12  # field paths listed per changed object


def field_paths(old: Any, new: Any, at: str = "") -> list[str]:
    """Field paths where two values differ."""
    if isinstance(old, dict) and isinstance(new, dict):
        found = []
        for key in sorted(set(old) | set(new), key=str):
            where = f"{at}.{key}" if at else str(key)
            if key not in old:
                found.append(f"{where} (added)")
            elif key not in new:
                found.append(f"{where} (removed)")
            else:
                found += field_paths(old[key], new[key], where)
        return found
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        return [p for i, (a, b) in enumerate(zip(old, new, strict=True))
                for p in field_paths(a, b, f"{at}[{i}]")]
    return [] if old == new else [at or "(whole)"]
