"""Reading a Pulumi stack file the way the Pulumi CLI hands it to a program.

The CLI passes every config value to the program as a string: scalars as their text (`true`,
`3`), objects and lists as JSON; keys without a namespace get the project's. Encrypted
`secure:` values cannot be decrypted offline (that needs the stack's secrets provider), so they
become marked placeholders and their keys are flagged secret, as the CLI would flag them. Each
placeholder ends with a digest of its ciphertext (public: it is in the stack file), so a secret
set anew changes what the program makes of it, and `review --base` sees the change.
"""

from __future__ import annotations

import difflib
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stacks import userfile
from stacks.config import ConfigError

# URL-shaped, so a secret URL setting validates with it (.invalid never resolves: RFC 2606);
# followed by the first 12 hex digits of the ciphertext's SHA-256.
SECRET_PLACEHOLDER = "https://offline-secret-placeholder.invalid/"
# Config namespaces besides the project's: the providers the program uses and Pulumi's own.
PROVIDER_NAMESPACES = ("aws", "kubernetes", "vault", "random", "pulumi")
_STACK_FILE_KEYS = {"config", "secretsprovider", "encryptedkey", "encryptionsalt", "environment"}


@dataclass(frozen=True)
class StackFile:
    path: Path
    stack: str
    config: dict[str, str]
    secret_keys: list[str] = field(default_factory=list)
    label: str = ""
    project: str = ""


def _is_secure(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {"secure"}


def _replace_secure(value: Any) -> tuple[Any, bool]:
    if _is_secure(value):
        digest = hashlib.sha256(str(value["secure"]).encode()).hexdigest()[:12]
        return SECRET_PLACEHOLDER + digest, True
    if isinstance(value, dict):
        found = False
        out = {}
        for key, item in value.items():
            out[key], hit = _replace_secure(item)
            found |= hit
        return out, found
    if isinstance(value, list):
        items = [_replace_secure(v) for v in value]
        return [v for v, _ in items], any(hit for _, hit in items)
    return value, False


def _as_cli_string(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if value is None:
        return ""
    return json.dumps(value)


def stack_name_of(path: Path) -> str:
    name = path.name
    if name.startswith("Pulumi.") and name.endswith((".yaml", ".yml")) and name.count(".") >= 2:
        return name[len("Pulumi."):].rsplit(".", 1)[0]
    return path.stem


def resolve(stack: str | Path, project_dir: Path) -> Path:
    """`dev` -> `<project>/Pulumi.dev.yaml`; anything that looks like a path is taken as one."""
    text = str(stack)
    if text.endswith((".yaml", ".yml")) or "/" in text:
        return Path(text)
    return project_dir / f"Pulumi.{text}.yaml"


# Keys set once for every stack, in Pulumi.yaml's project-level config only.
PROJECT_ONLY_KEYS = ("organizationBudgetMonthlyUsd",)


def read(path: Path, project: str, label: str | None = None,
         project_config: Mapping[str, Any] | None = None) -> StackFile:
    """Read a stack file; `label` is how errors name it (default: the path). `project_config`
    (Pulumi.yaml's `config:`) gives every key's default, as the CLI does; the stack file's own
    values win, except PROJECT_ONLY_KEYS, which a stack file may not set."""
    label = label or str(path)
    if not path.exists():
        found = sorted(stack_name_of(p) for p in path.parent.glob("Pulumi.*.yaml")
                       if p.is_file())
        known = f"; stacks in {path.parent}: {', '.join(found)}" if found else ""
        raise ConfigError(label, [f"stack file not found: {path}{known}"])
    if path.name in ("Pulumi.yaml", "Pulumi.yml"):
        found = sorted(stack_name_of(p) for p in path.parent.glob("Pulumi.*.yaml") if p.is_file())
        raise ConfigError(label, [f"{path.name} is the project file, not a stack file; allowed: "
                                  "a stack (" + (", ".join(found) or "none here")
                                  + ") or its Pulumi.<stack>.yaml"])
    document = userfile.read_yaml(path, label) or {}
    if not isinstance(document, dict):
        raise ConfigError(label, ["the stack file must be a mapping with a `config:` key"])
    unknown = sorted(set(document) - _STACK_FILE_KEYS)
    if unknown:
        raise ConfigError(label, [
            f"{key}: unknown top-level key; allowed: {', '.join(sorted(_STACK_FILE_KEYS))}"
            for key in unknown
        ])
    raw_config = document.get("config") or {}
    if not isinstance(raw_config, dict):
        raise ConfigError(label, [f"config: {raw_config!r} must be a mapping of keys to values"])

    namespaces = {project, *PROVIDER_NAMESPACES}
    strangers = [str(k) for k in raw_config if ":" in str(k)
                 and str(k).split(":", 1)[0] not in namespaces]
    if strangers:
        problems = []
        for key in strangers:
            namespace = key.split(":", 1)[0]
            close = difflib.get_close_matches(namespace, sorted(namespaces), n=1)
            hint = f" (did you mean '{close[0]}:{key.split(':', 1)[1]}'?)" if close else ""
            problems.append(f"{key}: unknown config namespace '{namespace}'{hint}; allowed: "
                            + ", ".join(f"{n}:" for n in sorted(namespaces)))
        raise ConfigError(label, problems)
    project_only = [str(k) for k in raw_config
                    if str(k).split(":", 1)[-1] in PROJECT_ONLY_KEYS
                    and str(k).split(":", 1)[0] in (project, str(k))]
    if project_only:
        raise ConfigError(label, [
            f"{key}: set for every stack at once, in Pulumi.yaml's project-level `config:` "
            "(one organisation-wide value); allowed: remove it here" for key in project_only])
    config: dict[str, str] = {}
    secret_keys: list[str] = []
    for key, value in (project_config or {}).items():
        full_key = key if ":" in str(key) else f"{project}:{key}"
        config[full_key] = _as_cli_string(value)
    for key, value in raw_config.items():
        full_key = key if ":" in str(key) else f"{project}:{key}"
        value, secret = _replace_secure(value)
        config[full_key] = _as_cli_string(value)
        if secret:
            secret_keys.append(full_key)
    return StackFile(path=path, stack=stack_name_of(path), config=config,
                     secret_keys=secret_keys, label=label, project=project)
