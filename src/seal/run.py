"""A run on disk and the objects a recipe works with.

    runs/<name>/
      config.yaml        resolved config, written first
      store.sqlite       every self-edit and score
      checkpoints/round-r/   the merged policy after each ReST-EM round
      summary.json, report.md, *.png

Opening an existing run directory resumes it; a config that differs in anything that changes results is
refused (start a new run directory instead).
"""

from __future__ import annotations

import gc
import json
import shutil
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import yaml

from seal.config import ConfigError, RunConfig, dump_config
from seal.generate import SamplingParams
from seal.store import Store

# keys that change speed or memory, not results: a resumed run may change them
_HARMLESS = {"inner.eval_batch_size", "inner.max_adapters_per_batch", "grader.judge.concurrency",
             "grader.judge.timeout_s", "grader.judge.max_retries", "grader.judge.backoff_s", "model.cache_dir",
             "restem.rounds", "eval.every_round", "name"}


def _flatten(d: dict, prefix: str = "") -> dict[str, object]:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def open_run_dir(run_dir: Path, cfg: RunConfig) -> Store:
    """Create or resume `run_dir`: write config.yaml first, or check it against `cfg` when resuming."""
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / "config.yaml"
    new = cfg.model_dump(mode="json")
    if path.exists():
        old = yaml.safe_load(path.read_text()) or {}
        a, b = _flatten(old), _flatten(new)
        diff = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k) and k not in _HARMLESS)
        if diff:
            shown = ", ".join(f"{k}: {a.get(k)!r} -> {b.get(k)!r}" for k in diff[:8])
            raise ConfigError(f"{run_dir} holds a run with a different config ({shown}); resume it with the same "
                              f"config or choose another --run-dir")
    path.write_text(dump_config(cfg))
    return Store(run_dir / "store.sqlite")


@dataclass
class RunContext:
    """What every recipe step needs: config, run directory, store, domain, backend (`seal.backend`)."""

    cfg: RunConfig
    run_dir: Path
    store: Store
    domain: object
    backend: object = None

    @property
    def sampling(self) -> SamplingParams:
        g = self.cfg.generation
        return SamplingParams(g.temperature, g.top_p, g.max_new_tokens)


def free(loaded) -> None:
    """Drop a model that is no longer needed (and its GPU memory)."""
    import torch

    if loaded is not None and hasattr(loaded, "model"):
        loaded.model = None  # the caller's handle no longer keeps the weights alive
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


@contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Write a directory atomically: fill the yielded `<path>.tmp`; it replaces `path` only when the block
    finishes, so a crash leaves the old directory (or none), never half of one."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    yield tmp
    shutil.rmtree(path, ignore_errors=True)
    tmp.rename(path)


def write_json(path: Path, data) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2))
    tmp.replace(path)
