"""One short recipe per experiment; each module's `main(cfg, run_dir) -> Summary` reads top to bottom.

    knowledge   single-passage SEAL: ReST-EM rounds, then the table on held-out passages (the paper's main one)
    cpt         continued pretraining: many passages (and their self-edits) learned in one update
    continual   passages learned one after another: the accuracy matrix and forgetting
    arc         few-shot ARC: tool-config self-edits and test-time training
    learn       `seal learn`: documents in, a model that knows them out (label-free self-edits, one update)

The CLI finds a recipe by the config's `experiment` through `recipe()`, the one place that imports seal
modules by name (the import-graph test reads `RECIPES` to see these edges).
"""

from __future__ import annotations

import importlib

RECIPES = {"knowledge": "seal.experiments.knowledge", "cpt": "seal.experiments.cpt",
           "continual": "seal.experiments.continual", "arc": "seal.experiments.arc", "learn": "seal.experiments.learn"}


def recipe(name: str):
    """The recipe module of experiment `name` (its `main(cfg, run_dir)` runs it)."""
    if name not in RECIPES:
        raise KeyError(f"unknown experiment '{name}': choose one of {', '.join(RECIPES)}")
    return importlib.import_module(RECIPES[name])
