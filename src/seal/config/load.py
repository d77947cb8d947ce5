"""Loading a config: a YAML file (or the defaults), `--set a.b=c` overrides, validation with errors that name
the key and suggest the right one, the reference written to docs/config.md, and which keys a resumed run may
change (those declared `resume_safe`).
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from seal.config.fields import RESUME_SAFE
from seal.config.sections import ConfigError, RunConfig


def _parse_value(text: str) -> Any:
    """`--set` values are YAML scalars/lists: `1e-3`, `true`, `[q_proj, v_proj]`, `null`."""
    return yaml.safe_load(text) if text != "" else ""


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    """Apply `a.b.c=value` overrides to a nested dict (new keys are allowed; validation catches typos)."""
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"--set expects key=value, got '{item}'")
        key, _, value = item.partition("=")
        parts = key.strip().split(".")
        node = data
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"--set {key}: '{part}' is not a section")
            node = child
        node[parts[-1]] = _parse_value(value)
    return data


def _fields_at(model: type[BaseModel], loc: tuple) -> list[str]:
    """Field names of the section an error location points into (for did-you-mean)."""
    for part in loc[:-1]:
        field = model.model_fields.get(str(part))
        ann = getattr(field, "annotation", None) if field else None
        if not (isinstance(ann, type) and issubclass(ann, BaseModel)):
            return []
        model = ann
    return list(model.model_fields)


def _explain(err: ValidationError, source: str) -> str:
    lines = [f"invalid config ({source}):"]
    for e in err.errors():
        loc = tuple(e["loc"])
        where = ".".join(str(p) for p in loc) or "<root>"
        if e["type"] == "extra_forbidden":
            known = _fields_at(RunConfig, loc)
            hint = difflib.get_close_matches(str(loc[-1]), known, n=1, cutoff=0.5)
            tip = f" (did you mean '{'.'.join(str(p) for p in loc[:-1] + (hint[0],))}'?)" if hint else ""
            lines.append(f"  {where}: unknown key{tip}")
        else:
            msg = e["msg"].removeprefix("Value error, ")
            lines.append(f"  {where}: {msg} (got {e.get('input')!r})")
    return "\n".join(lines)


def validate(data: dict, source: str = "config") -> RunConfig:
    try:
        return RunConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_explain(err, source)) from None


def load_config(path: str | os.PathLike | None, overrides: list[str] | None = None) -> RunConfig:
    """Read a YAML config (or start from defaults), apply overrides, validate."""
    data: dict = {}
    source = "defaults"
    if path is not None:
        source = str(path)
        try:
            text = Path(path).read_text()
        except FileNotFoundError:
            raise ConfigError(f"config file not found: {path}") from None
        try:
            data = yaml.safe_load(text) or {}
        except yaml.YAMLError as e:
            raise ConfigError(f"{path}: not valid YAML: {e}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: top level must be a mapping of sections, got {type(data).__name__}")
    apply_overrides(data, overrides or [])
    return validate(data, source)


def dump_config(cfg: RunConfig) -> str:
    return yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False)


def config_reference() -> str:
    """Markdown reference of every key: written to docs/config.md by `seal config-docs`."""
    out = [
        "# Config reference",
        "",
        "Generated from `src/seal/config/` by `seal config-docs`; do not edit by hand.",
        "Set any key in the YAML file or on the command line: `seal run CONFIG --set inner.lr=3e-4`.",
        "",
    ]

    def walk(model: type[BaseModel], prefix: str):
        rows, subs = [], []
        for name, f in model.model_fields.items():
            ann = f.annotation
            if isinstance(ann, type) and issubclass(ann, BaseModel):
                subs.append((f"{prefix}{name}", ann, f.description))
                continue
            default = f.get_default(call_default_factory=True)
            bounds = ", ".join(
                f"{k} {getattr(m, k)}" for m in f.metadata for k in ("ge", "gt", "le", "lt") if hasattr(m, k)
            )
            typ = str(ann).replace("typing.", "").replace("<class '", "").replace("'>", "")
            rows.append(f"| `{prefix}{name}` | `{typ}` | `{default!r}` | {bounds} | {f.description} |")
        if rows:
            out.extend([f"## `{prefix.rstrip('.') or 'top level'}`", "", "| key | type | default | bounds | meaning |",
                        "|---|---|---|---|---|", *rows, ""])
        for sub_prefix, sub, desc in subs:
            if desc:
                out.append(f"<!-- {sub_prefix}: {desc} -->")
            walk(sub, sub_prefix + ".")

    walk(RunConfig, "")
    return "\n".join(out) + "\n"


def _is_section(ann) -> bool:
    return isinstance(ann, type) and issubclass(ann, BaseModel)


def resume_safe_keys(model: type[BaseModel] = RunConfig, prefix: str = "") -> set[str]:
    """Dotted keys (a section's key covers every key under it) that a resumed run may change: the fields
    declared with `resume_safe`.

    >>> sorted(k for k in resume_safe_keys() if k.startswith("inner."))
    ['inner.eval_batch_size', 'inner.max_adapters_per_batch', 'inner.split_by_length']
    """
    out = set()
    for name, f in model.model_fields.items():
        extra = f.json_schema_extra if isinstance(f.json_schema_extra, dict) else {}
        if extra.get(RESUME_SAFE):
            out.add(prefix + name)
        elif _is_section(f.annotation):
            out |= resume_safe_keys(f.annotation, f"{prefix}{name}.")
    return out


def changed_keys(old: dict, new: dict) -> list[tuple[str, Any, Any]]:
    """(key, old, new) of every results-changing key that differs between two dumped configs."""
    a, b = _flatten(old), _flatten(new)
    defaults = _flatten(RunConfig().model_dump(mode="json"))
    safe = resume_safe_keys()
    covered = lambda k: any(k == s or k.startswith(s + ".") for s in safe)  # noqa: E731
    # a key the old config lacks (it predates the key) counts as that key's default
    a = {**{k: v for k, v in defaults.items() if k not in a and k in b}, **a}
    return [(k, a.get(k), b.get(k)) for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k) and not covered(k)]


def _flatten(d: dict, prefix: str = "") -> dict[str, object]:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out
