"""Generated ARC-like tasks for the CPU-size ARC experiment and the tests: seeded, from families of
transformations (geometric, colour mapping, tiling, scaling). Every task of a family shares its rule; the
splits draw disjoint instances (different seeds, grids and colours).
"""

from __future__ import annotations

import random
from typing import Callable

from seal.domains.arc.augment import Flip, Repeat, Rotate, Scale, Transpose
from seal.domains.arc.grids import ArcTask, Example, Grid

Rule = Callable[[Grid], Grid]


def _recolour(rng: random.Random) -> Rule:
    """Three colours each replaced by another (never by itself, so the rule always changes something)."""
    colours = rng.sample(range(1, 10), 3)
    table = {c: rng.choice([t for t in range(1, 10) if t != c]) for c in colours}
    return lambda g: tuple(tuple(table.get(c, c) for c in row) for row in g)


FAMILIES: dict[str, Callable[[random.Random], Rule]] = {
    "flip_vertical": lambda rng: Flip(0).apply,
    "flip_horizontal": lambda rng: Flip(1).apply,
    "rotate90": lambda rng: Rotate(90).apply,
    "rotate180": lambda rng: Rotate(180).apply,
    "transpose": lambda rng: Transpose().apply,
    "recolour": _recolour,
    "tile_down": lambda rng: Repeat(2, 1).apply,
    "tile_across": lambda rng: Repeat(1, 2).apply,
    "scale2": lambda rng: Scale(2, 2).apply,
}


def random_grid(rng: random.Random, min_side: int = 2, max_side: int = 4, density: float = 0.6) -> Grid:
    h, w = rng.randint(min_side, max_side), rng.randint(min_side, max_side)
    palette = rng.sample(range(1, 10), rng.randint(2, 4))
    return tuple(tuple(rng.choice(palette) if rng.random() < density else 0 for _ in range(w)) for _ in range(h))


def make_task(family: str, seed: int, n_train: int = 3, max_side: int = 4) -> ArcTask:
    rng = random.Random(f"arc-{family}-{seed}")
    rule = FAMILIES[family](rng)
    grids: list[Grid] = []
    for _ in range(10_000):
        g = random_grid(rng, max_side=max_side)
        if g not in grids and rule(g) != g:  # an identity demo teaches nothing
            grids.append(g)
        if len(grids) == n_train + 1:
            break
    else:
        raise RuntimeError(f"could not draw {n_train + 1} distinct grids that {family} changes (seed {seed})")
    train = tuple(Example(g, rule(g)) for g in grids[:n_train])
    return ArcTask(f"{family}-{seed}", train, grids[-1], rule(grids[-1]))


def world_tasks(split: str, n_per_family: int = 8, families: tuple[str, ...] | None = None) -> list[ArcTask]:
    """Tasks of a split: `pretrain`, `train` (ReST-EM) or `eval`; disjoint seed ranges per split."""
    offset = {"pretrain": 0, "train": 1_000_000, "eval": 2_000_000}[split]
    fams = families or tuple(FAMILIES)
    return [make_task(f, offset + i) for i in range(n_per_family) for f in fams]
