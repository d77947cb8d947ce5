"""Generated ARC-like tasks for the CPU-size ARC experiment and the tests: seeded, from families of
transformations (geometric, colour mapping, tiling, scaling). Every task of a family shares its rule; the
splits draw disjoint instances (different seeds, grids and colours).
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable

from seal.domains.arc.augment import Flip, Repeat, Rotate, Scale, Transpose
from seal.domains.arc.grids import ArcTask, Example, Grid

Rule = Callable[[Grid], Grid]
# A family draws a task's rule and, optionally, the task's palette (every grid of the task uses only it).
Family = Callable[[random.Random], "tuple[Rule, tuple[int, ...] | None]"]


def _recolour(rng: random.Random) -> tuple[Rule, tuple[int, ...]]:
    """A per-task colour mapping: the task's 3 colours each replaced by another (never by itself). The test
    input only uses colours the demonstrations show, so the mapping can be read off them."""
    palette = tuple(rng.sample(range(1, 10), 3))
    table = {c: rng.choice([t for t in range(1, 10) if t != c]) for c in palette}
    return (lambda g: tuple(tuple(table.get(c, c) for c in row) for row in g)), palette


def _fixed(rule: Rule) -> Family:
    return lambda rng: (rule, None)


def colour_map(k: int) -> Rule:
    """The k-th fixed colour map: a seeded permutation of the colours 1-9 that moves every one of them (0, the
    background, stays). The same map in every task of its family, unlike `recolour`."""
    rng = random.Random(f"colour-map-{k}")
    while True:
        perm = list(range(1, 10))
        rng.shuffle(perm)
        if all(p != c for c, p in zip(range(1, 10), perm)):
            break
    table = (0, *perm)
    return lambda g: tuple(tuple(table[c] for c in row) for row in g)


N_COLOUR_MAPS = 16


def _summary(fn: Callable[[list[int]], int | None]) -> Family:
    """A rule whose output is one cell computed from the input's non-zero cells (None: the grid is ambiguous
    for it, e.g. two colours tie for most common, and is not drawn)."""
    def rule(g: Grid) -> Grid | None:
        value = fn([c for row in g for c in row if c])
        return None if value is None else ((value,),)
    return lambda rng: (rule, None)


def _unique(pick) -> Callable[[list[int]], int | None]:
    def fn(cells: list[int]) -> int | None:
        counts = Counter(cells)
        if len(counts) < 2:
            return None
        best = pick(counts.values())
        winners = [c for c, n in counts.items() if n == best]
        return winners[0] if len(winners) == 1 else None
    return fn


# One-cell answers that need no geometry, only counting: what a few-million-parameter model can execute.
# `most_common`, `least_common` and `count_colours` are unchanged by every augmentation; `count_cells` is
# not unchanged by scaling or tiling (they multiply the count), so the size, chain and repeat augmentation
# groups teach it wrong answers.
def _tl_fixed(k: int) -> Family:
    table = colour_map(k)(((0, 1, 2, 3, 4, 5, 6, 7, 8, 9),))[0]
    return lambda rng: ((lambda g: ((table[g[0][0]],),) if g[0][0] else None), None)


def _tl_table(rng: random.Random) -> tuple[Rule, tuple[int, ...]]:
    """A per-task table applied to the top-left cell: the answer is table[top-left colour]."""
    palette = tuple(rng.sample(range(1, 10), 3))
    table = {c: rng.choice([t for t in range(1, 10) if t != c]) for c in palette}
    return (lambda g: ((table[g[0][0]],),) if g[0][0] else None), palette


SUMMARY_FAMILIES = ("most_common", "least_common", "count_colours", "count_cells")


FAMILIES: dict[str, Family] = {
    "flip_vertical": _fixed(Flip(0).apply),
    "flip_horizontal": _fixed(Flip(1).apply),
    "rotate90": _fixed(Rotate(90).apply),
    "rotate180": _fixed(Rotate(180).apply),
    "transpose": _fixed(Transpose().apply),
    "recolour": _recolour,
    "tile_down": _fixed(Repeat(2, 1).apply),
    "tile_across": _fixed(Repeat(1, 2).apply),
    "scale2": _fixed(Scale(2, 2).apply),
    **{f"colour_map_{k}": _fixed(colour_map(k)) for k in range(N_COLOUR_MAPS)},
    "most_common": _summary(_unique(max)),
    "least_common": _summary(_unique(min)),
    "count_colours": _summary(lambda cells: len(set(cells)) if 0 < len(set(cells)) <= 9 else None),
    "count_cells": _summary(lambda cells: len(cells) if 0 < len(cells) <= 9 else None),
    **{f"tl_map_{k}": _tl_fixed(k) for k in range(12)},
    "tl_table": _tl_table,
}


def random_grid(rng: random.Random, min_side: int = 2, max_side: int = 4, density: float = 0.6,
                palette: tuple[int, ...] | None = None) -> Grid:
    h, w = rng.randint(min_side, max_side), rng.randint(min_side, max_side)
    palette = palette or tuple(rng.sample(range(1, 10), rng.randint(2, 4)))
    return tuple(tuple(rng.choice(palette) if rng.random() < density else 0 for _ in range(w)) for _ in range(h))


def _colours(g: Grid) -> set[int]:
    return {c for row in g for c in row}


def make_task(family: str, seed: int, n_train: int = 3, max_side: int = 4) -> ArcTask:
    """A task of `family`: `n_train` demonstrations and a test, distinct grids that the rule changes, the
    test input using no colour the demonstrations' inputs lack."""
    rng = random.Random(f"arc-{family}-{seed}")
    rule, palette = FAMILIES[family](rng)
    grids: list[Grid] = []
    for _ in range(10_000):
        g = random_grid(rng, max_side=max_side, palette=palette)
        out = rule(g)
        if g in grids or out is None or out == g:  # an identity demo teaches nothing
            continue
        if len(grids) == n_train and not _colours(g) <= set().union(*map(_colours, grids)):
            continue
        if len(grids) == n_train and family.startswith("tl_") and g[0][0] not in {d[0][0] for d in grids}:
            continue
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
