"""Augmenters: small typed transforms of ARC grids, each with its inverse where one exists.

Geometric augmenters map a grid to a grid and know their inverse (`invert(apply(g)) == g`), so a prediction
made on an augmented task can be mapped back. A task is augmented by applying one geometric augmenter to every
grid, then (always, as in the paper) a colour permutation that keeps 0 (the background) fixed and a
permutation of the demonstrations' order.

The paper's tool groups (Zweiger et al. 2025, ARC self-edits):

    basic   rotations 90/180/270, flips on both axes, reflections, random translation, transpose
    size    2× resolution, 2× height, 2× width
    chain   a rotation/flip/transpose followed by 2× resolution
    repeat  tiling along either or both axes
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np

from seal.domains.arc.grids import Grid


def to_array(g: Grid) -> np.ndarray:
    return np.array(g, dtype=np.int64)


def to_grid(a: np.ndarray) -> Grid:
    return tuple(tuple(int(x) for x in row) for row in a)


class Augmenter:
    """A grid transform. `invert` undoes `apply`; `shape(h, w)` is the output shape."""

    name = "augmenter"

    def apply(self, g: Grid) -> Grid:
        return to_grid(self._apply(to_array(g)))

    def invert(self, g: Grid) -> Grid:
        return to_grid(self._invert(to_array(g)))

    def shape(self, h: int, w: int) -> tuple[int, int]:
        return self._apply(np.zeros((h, w), dtype=np.int64)).shape

    def _apply(self, a: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _invert(self, a: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def __repr__(self) -> str:
        return self.name


@dataclass(frozen=True, repr=False)
class Identity(Augmenter):
    name = "identity"

    def _apply(self, a):
        return a

    def _invert(self, a):
        return a


@dataclass(frozen=True, repr=False)
class Rotate(Augmenter):
    degrees: int = 90  # counter-clockwise

    def __post_init__(self):
        if self.degrees not in (90, 180, 270):
            raise ValueError("Rotate takes 90, 180 or 270 degrees")

    @property
    def name(self):
        return f"rotate{self.degrees}"

    def _apply(self, a):
        return np.rot90(a, self.degrees // 90)

    def _invert(self, a):
        return np.rot90(a, -(self.degrees // 90))


@dataclass(frozen=True, repr=False)
class Flip(Augmenter):
    axis: int = 0  # 0: upside down; 1: left-right

    @property
    def name(self):
        return f"flip{self.axis}"

    def _apply(self, a):
        return np.flip(a, self.axis)

    _invert = _apply


@dataclass(frozen=True, repr=False)
class Transpose(Augmenter):
    name = "transpose"

    def _apply(self, a):
        return a.T

    _invert = _apply


@dataclass(frozen=True, repr=False)
class Reflect(Augmenter):
    """The grid next to its mirror image along `axis` (0: below, 1: right); `reverse` puts the mirror first."""

    axis: int = 0
    reverse: bool = False

    @property
    def name(self):
        return f"reflect{self.axis}{'r' if self.reverse else ''}"

    def _apply(self, a):
        parts = [a, np.flip(a, self.axis)]
        return np.concatenate(parts[::-1] if self.reverse else parts, axis=self.axis)

    def _invert(self, a):
        n = a.shape[self.axis] // 2
        half = np.take(a, range(n, 2 * n) if self.reverse else range(n), axis=self.axis)
        return half


@dataclass(frozen=True, repr=False)
class Translate(Augmenter):
    """A cyclic shift by (dy, dx): every cell moves, nothing is lost, so it is invertible."""

    dy: int = 1
    dx: int = 1

    @property
    def name(self):
        return f"translate{self.dy},{self.dx}"

    def _apply(self, a):
        return np.roll(a, (self.dy, self.dx), axis=(0, 1))

    def _invert(self, a):
        return np.roll(a, (-self.dy, -self.dx), axis=(0, 1))


@dataclass(frozen=True, repr=False)
class Scale(Augmenter):
    """Each cell becomes a `fy`×`fx` block: resolution ×2 is (2, 2), height ×2 (2, 1), width ×2 (1, 2)."""

    fy: int = 2
    fx: int = 2

    @property
    def name(self):
        return {(2, 2): "resolution2", (2, 1): "height2", (1, 2): "width2"}.get((self.fy, self.fx),
                                                                               f"scale{self.fy}x{self.fx}")

    def _apply(self, a):
        return np.repeat(np.repeat(a, self.fy, axis=0), self.fx, axis=1)

    def _invert(self, a):
        return a[:: self.fy, :: self.fx]


@dataclass(frozen=True, repr=False)
class Repeat(Augmenter):
    """The grid tiled `ny` times down and `nx` times across."""

    ny: int = 2
    nx: int = 1

    @property
    def name(self):
        return f"repeat{self.ny}x{self.nx}"

    def _apply(self, a):
        return np.tile(a, (self.ny, self.nx))

    def _invert(self, a):
        return a[: a.shape[0] // self.ny, : a.shape[1] // self.nx]


@dataclass(frozen=True, repr=False)
class Chain(Augmenter):
    steps: tuple[Augmenter, ...] = ()

    @property
    def name(self):
        return "+".join(s.name for s in self.steps)

    def _apply(self, a):
        for s in self.steps:
            a = s._apply(a)
        return a

    def _invert(self, a):
        for s in reversed(self.steps):
            a = s._invert(a)
        return a


@dataclass(frozen=True)
class ColorPermutation:
    """A bijection of the colours 1-9 (0, the background, stays 0)."""

    mapping: tuple[int, ...]  # mapping[c] = new colour of c, for c in 0..9

    def __post_init__(self):
        if sorted(self.mapping) != list(range(10)) or self.mapping[0] != 0:
            raise ValueError("a colour permutation is a bijection of 0-9 that keeps 0")

    @classmethod
    def random(cls, rng: random.Random) -> "ColorPermutation":
        rest = list(range(1, 10))
        rng.shuffle(rest)
        return cls((0, *rest))

    def apply(self, g: Grid) -> Grid:
        return tuple(tuple(self.mapping[c] for c in row) for row in g)

    def invert(self, g: Grid) -> Grid:
        inv = [0] * 10
        for c, m in enumerate(self.mapping):
            inv[m] = c
        return tuple(tuple(inv[c] for c in row) for row in g)


IDENTITY = Identity()
ROTATIONS = (Rotate(90), Rotate(180), Rotate(270))
FLIPS = (Flip(0), Flip(1))
BASIC = (*ROTATIONS, *FLIPS, Transpose(), Reflect(0), Reflect(1), Reflect(0, True), Reflect(1, True),
         Translate(1, 1), Translate(2, 3))
SIZE = (Scale(2, 2), Scale(2, 1), Scale(1, 2))
CHAIN = tuple(Chain((g, Scale(2, 2))) for g in (*ROTATIONS, *FLIPS, Transpose()))
REPEAT = (Repeat(2, 1), Repeat(1, 2), Repeat(2, 2))
GROUPS = {"basic": BASIC, "size": SIZE, "chain": CHAIN, "repeat": REPEAT}
# the views a prediction is made under and mapped back from (shape-preserving up to a transpose)
VOTING_VIEWS = (IDENTITY, *ROTATIONS, *FLIPS, Transpose())
