"""The plain types that cross every seam of SEAL, and the Domain protocol.

    context --policy writes--> SelfEdit --domain.plan--> UpdatePlan | Invalid
    UpdatePlan + questions --engine--> answers --domain.score--> Score

Nothing in `seal.inner` or `seal.outer` knows which domain it serves: they only see these types.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, Sequence


@dataclass(frozen=True)
class QA:
    """One question about a context with its gold answers: `answer` first (the one tables and prompts quote), then
    any `alternatives` other annotators gave (SQuAD has up to five per question; graders take the best over all).

    >>> QA("Where?", "St. Louis", ("Saint Louis", "St. Louis")).answers
    ('St. Louis', 'Saint Louis')
    """

    question: str
    answer: str
    alternatives: tuple[str, ...] = ()  # other gold answers; duplicates of `answer` and of each other are dropped

    def __post_init__(self):
        # One canonical form, so two QAs with the same distinct golds in the same order compare equal.
        distinct = tuple(a for a in dict.fromkeys(self.alternatives) if a != self.answer)
        object.__setattr__(self, "alternatives", distinct)

    @property
    def answers(self) -> tuple[str, ...]:
        """Every distinct gold answer, `answer` first."""
        return (self.answer, *self.alternatives)


@dataclass(frozen=True)
class Context:
    """One unit of new input: a passage with its questions (or an ARC task, see `payload`)."""

    id: str
    title: str
    text: str
    questions: tuple[QA, ...]
    completions: tuple[str, ...] = ()  # teacher self-edits shipped with the data, if any
    payload: object = None  # domain-specific structure (e.g. an ARC task); never read by inner/outer


@dataclass(frozen=True)
class SelfEdit:
    """A completion the policy wrote for a context."""

    context_id: str
    prompt: str
    completion: str
    policy: str  # which model wrote it: "base", "round-1", "teacher", ...
    sample: int = 0


@dataclass(frozen=True)
class TrainSequence:
    """One training sequence: token ids and a 0/1 loss mask of the same length."""

    input_ids: tuple[int, ...]
    loss_mask: tuple[int, ...]

    def __post_init__(self):
        if len(self.input_ids) != len(self.loss_mask):
            raise ValueError("input_ids and loss_mask must have the same length")

    @property
    def n_loss_tokens(self) -> int:
        return sum(self.loss_mask)


@dataclass(frozen=True)
class LoraSpec:
    """Shape of the adapter the inner loop trains (the paper's knowledge defaults)."""

    r: int = 32
    alpha: int = 64
    dropout: float = 0.0
    target_modules: tuple[str, ...] | None = None  # None: the model type's defaults (peft's mapping)


@dataclass(frozen=True)
class OptimSpec:
    """Optimiser settings of one inner loop: AdamW with a per-step schedule."""

    lr: float = 1e-3
    epochs: int = 10
    batch_size: int = 1
    schedule: str = "linear"  # linear | cosine | constant
    warmup_steps: int = 0
    weight_decay: float = 0.0
    max_grad_norm: float | None = 1.0


@dataclass(frozen=True)
class UpdatePlan:
    """Everything the inner loop needs to adapt the base model, and nothing else."""

    sequences: tuple[TrainSequence, ...]
    lora: LoraSpec = field(default_factory=LoraSpec)
    optim: OptimSpec = field(default_factory=OptimSpec)

    @property
    def n_steps(self) -> int:
        """Optimiser steps this plan takes (the batched engine schedules by it)."""
        per_epoch = -(-len(self.sequences) // self.optim.batch_size)
        return per_epoch * self.optim.epochs

    @property
    def n_tokens(self) -> int:
        return sum(len(s.input_ids) for s in self.sequences)


@dataclass(frozen=True)
class UpdateSpec:
    """A lasting update over many sequences (continued pretraining, a continual step, `seal learn`): a LoRA
    merged into the weights afterwards (or kept as an adapter), or every weight trained (`full`)."""

    mode: str = "lora"  # lora | full
    lora: LoraSpec = LoraSpec()
    optim: OptimSpec = OptimSpec()
    grad_accum: int = 1

    def n_steps(self, n_sequences: int) -> int:
        micro = -(-n_sequences // self.optim.batch_size)
        return -(-micro // self.grad_accum) * self.optim.epochs


@dataclass(frozen=True)
class Invalid:
    """A self-edit that cannot be applied: it scores 0 and the reason is recorded."""

    reason: str


@dataclass(frozen=True)
class Probe:
    """A prompt the adapted model answers greedily (a question, or one augmented ARC view)."""

    prompt: str
    max_new_tokens: int = 64


@dataclass(frozen=True)
class Job:
    """One inner loop: adapt with `plan` (None: no adaptation), then answer `probes`."""

    plan: UpdatePlan | None
    probes: tuple[Probe, ...]
    seed: int = 0


@dataclass
class InnerResult:
    """What an engine returns for one job: raw answers plus training diagnostics."""

    answers: list[str]
    step_losses: list[float] = field(default_factory=list)
    train_seconds: float = 0.0
    eval_seconds: float = 0.0
    failed: str | None = None  # e.g. "non-finite loss at step 12"; answers are then empty


@dataclass
class Score:
    """The reward of one inner loop: per-question correctness (None = ungraded)."""

    correct: list[bool | None]
    answers: list[str]
    train_seconds: float = 0.0
    eval_seconds: float = 0.0
    failed: str | None = None
    invalid: str | None = None
    n_steps: int = 0
    f1: list[float] | None = None  # per-question token F1 (best over the golds) where the `f1` grader graded

    @property
    def n_graded(self) -> int:
        return sum(c is not None for c in self.correct)

    @property
    def n_ungraded(self) -> int:
        return sum(c is None for c in self.correct)

    @property
    def accuracy(self) -> float:
        """Fraction correct among graded questions; 0 for invalid or failed self-edits."""
        if self.invalid is not None or self.failed is not None:
            return 0.0
        graded = [c for c in self.correct if c is not None]
        return sum(graded) / len(graded) if graded else 0.0

    @property
    def mean_f1(self) -> float | None:
        """Mean per-question token F1: 0 for invalid or failed self-edits (as `accuracy`), otherwise None where no
        F1 was computed (a grader other than `f1`)."""
        if self.invalid is not None or self.failed is not None:
            return 0.0
        if self.f1 is None:
            return None
        return sum(self.f1) / len(self.f1) if self.f1 else 0.0


class Domain(Protocol):
    """What a domain supplies to the shared loop. A new domain is one new module."""

    def prompt(self, context: Context) -> str:
        """The self-edit prompt the policy completes."""

    def plan(self, context: Context, self_edit: SelfEdit | None) -> UpdatePlan | Invalid:
        """Turn a self-edit (None: the context alone) into an update plan."""

    def probes(self, context: Context) -> tuple[Probe, ...]:
        """Prompts the adapted model answers; `score` reads the answers in this order."""

    def score(self, context: Context, result: InnerResult) -> Score:
        """Grade the answers of one inner loop."""


def mean(xs: Sequence[float]) -> float:
    return sum(xs) / len(xs) if xs else 0.0
