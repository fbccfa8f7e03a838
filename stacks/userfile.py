"""The one way a file a user wrote is read (stack files, service specs): a regular file of a
bounded size, UTF-8 (a byte-order mark allowed), YAML whose mappings hold each key once. Anything
else is a `ConfigError` naming the file and, where there is one, the line and column; never a
Python traceback, never a value silently dropped (YAML itself lets a later duplicate key win,
the Pulumi CLI refuses it)."""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Any

import yaml

from stacks.config import ConfigError

MAX_BYTES = 1_000_000  # a stack file or a spec is a few kilobytes; this is not one


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice in one mapping."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, yaml.Node] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                earlier = seen.get(key)
            except TypeError:  # an unhashable key: SafeLoader reports it
                continue
            if earlier is not None:
                raise yaml.constructor.ConstructorError(
                    None, None,
                    f"key {key!r} is given twice (line {earlier.start_mark.line + 1} and line "
                    f"{key_node.start_mark.line + 1}); allowed: each key once",
                    key_node.start_mark)
            seen[key] = key_node
        return super().construct_mapping(node, deep=deep)


def read_text(path: Path, label: str | None = None, max_bytes: int = MAX_BYTES) -> str:
    """The file's text, or `ConfigError` (not a regular file, too large, not UTF-8)."""
    label = label or str(path)
    if not path.exists():
        raise ConfigError(label, ["file not found"])
    if not path.is_file():
        raise ConfigError(label, ["not a regular file (a directory or a device); allowed: a "
                                  "YAML file"])
    size = path.stat().st_size
    if size > max_bytes:
        raise ConfigError(label, [f"{size:,} bytes; allowed: at most {max_bytes:,}"])
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        column = error.start - (data.rfind(b"\n", 0, error.start) + 1) + 1
        raise ConfigError(label, [
            f"not UTF-8 at line {line}, column {column} (byte 0x{data[error.start]:02x}); "
            "allowed: UTF-8 text (save the file as UTF-8)"]) from None


# libyaml's parser where PyYAML has it, safe like SafeLoader: for documents that need no
# duplicate-key check (generated files, rendered manifests), read many times per review.
FAST_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@functools.lru_cache(maxsize=256)
def _parsed(text: str) -> Any:
    """The document of a text, parsed once per process (a review reads the project file and the
    stack files several times; the duplicate-key-checking loader is pure Python)."""
    return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass


def read_yaml(path: Path, label: str | None = None) -> Any:
    """The file's YAML document, or `ConfigError` with the line and column of the problem."""
    label = label or str(path)
    text = read_text(path, label)
    try:
        return copy.deepcopy(_parsed(text))  # a copy: callers may change what they get
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(error, "problem", None) or str(error)
        raise ConfigError(label, [f"not valid YAML{where}: {problem}"]) from None
