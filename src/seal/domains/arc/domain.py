"""Few-shot ARC as a SEAL domain: the self-edit chooses augmentations and training settings (a JSON tool
config); the inner loop is test-time training (TTT) on augmented leave-one-out tasks built from the
demonstrations; the reward is 1 when the adapted model's voted prediction of the test output is exact.

    context   one ARC test input with its task's demonstrations (`Context.payload` is an `ArcTask`)
    prompt    the demonstrations and the config schema, through the model's chat template
    plan      tool config -> augmented leave-one/two-out tasks -> chat-rendered training sequences
    probes    the test task under the identity and 6 invertible views (3 rotations, 2 flips, transpose)
    score     each view's answer parsed, mapped back, voted; correct iff the vote equals the solution
"""

from __future__ import annotations

import itertools
import json
import random
from collections import Counter
from dataclasses import dataclass

from seal.domains.arc.augment import GROUPS, VOTING_VIEWS, Augmenter, ColorPermutation
from seal.domains.arc.grids import MAX_SIDE, ArcTask, Example, Grid
from seal.domains.arc.selfedit import ToolConfig, parse_tool_config
from seal.domains.base import (QA, Context, InnerResult, Invalid, LoraSpec, OptimSpec, Probe, Score, SelfEdit,
                               TrainSequence, UpdatePlan)
from seal.generate import encode_prompt
from seal.store import derive_seed

TASK_INTRO = ("Find the rule that turns each input grid into its output grid, then apply it to the test input. "
              "Grids are rows of digits 0-9.")
TOOL_PROMPT = (
    "You will adapt yourself to the ARC task below by test-time training. Choose the data augmentations and "
    "training settings as one JSON object:\n"
    '{"data_generation": {"use_basic_augmentations": bool, "use_size_augmentations": bool, '
    '"use_chain_augmentations": bool, "use_repeat_augmentations": bool}, "training": {"strategy": '
    '"train_using_all_tokens" | "train_using_output_tokens", "learning_rate": float, "num_train_epochs": int}}\n'
    "basic: rotations, flips, reflections, translations, transpose; size: 2x resolution, height or width; "
    "chain: a rotation/flip/transpose then 2x resolution; repeat: tiling.\n\n{task}"
)


def format_grid(g: Grid) -> str:
    return "\n".join(" ".join(str(c) for c in row) for row in g)


def parse_grid(text: str) -> Grid | None:
    """A grid from model output: whitespace-tolerant (digits may be spaced or not), strict on shape (every
    row the same length, digits only, at most 30×30). None if it is not a grid."""
    rows = []
    for line in text.strip().splitlines():
        cells = line.split()
        if not cells:
            if rows:
                break  # a blank line ends the grid
            continue
        if len(cells) == 1 and len(cells[0]) > 1:
            cells = list(cells[0])
        if not all(len(c) == 1 and c.isdigit() for c in cells):
            return None
        rows.append(tuple(int(c) for c in cells))
    if not rows or len(rows) > MAX_SIDE or len(rows[0]) > MAX_SIDE or any(len(r) != len(rows[0]) for r in rows):
        return None
    return tuple(rows)


def task_text(train: tuple[Example, ...] | list[Example], test_input: Grid) -> str:
    parts = [TASK_INTRO]
    for i, ex in enumerate(train, 1):
        parts.append(f"Example {i}\nInput:\n{format_grid(ex.input)}\nOutput:\n{format_grid(ex.output)}")
    parts.append(f"Test\nInput:\n{format_grid(test_input)}\nOutput:")
    return "\n\n".join(parts)


def augment_task(train, test: Example, aug: Augmenter, colors: ColorPermutation | None):
    f = (lambda g: colors.apply(aug.apply(g))) if colors else aug.apply
    return [Example(f(e.input), f(e.output)) for e in train], Example(f(test.input), f(test.output))


def _fits(examples) -> bool:
    return all(len(g) <= MAX_SIDE and len(g[0]) <= MAX_SIDE for e in examples for g in (e.input, e.output))


@dataclass(frozen=True)
class ArcSettings:
    """The TTT settings that are not the self-edit's to choose (the paper's)."""

    max_examples: int = 250
    max_steps: int = 375
    lora_r: int = 128
    lora_alpha: int = 16
    target_modules: tuple[str, ...] = ("q_proj", "v_proj", "gate_proj", "up_proj", "down_proj")
    batch_size: int = 2
    leave_out: tuple[int, ...] = (1, 2)
    max_length: int = 8192
    answer_max_new_tokens: int = 2048
    permute_colors: bool = False  # also recolour each augmented task at random (changes colour-mapping rules)


def ttt_tasks(task: ArcTask, groups: tuple[str, ...], settings: ArcSettings, seed: int
              ) -> list[tuple[list[Example], Example]]:
    """Leave-one/two-out tasks from the demonstrations, as they are and augmented by the chosen groups (with
    `permute_colors`, each augmented task also under a random colour permutation): filtered to 30×30,
    deduplicated, capped with the unaugmented ones first."""
    rng = random.Random(seed)
    demos = list(task.train)
    base = []
    for k in settings.leave_out:
        if len(demos) - k < 1:
            continue
        for out in itertools.combinations(range(len(demos)), k):
            kept = [d for i, d in enumerate(demos) if i not in out]
            base += [(kept, demos[q]) for q in out]
    augs = [a for g in groups for a in GROUPS[g]]
    seen: set[str] = set()

    def add(pool: list, t_train: list[Example], t_query: Example) -> None:
        rng.shuffle(t_train)  # example order: always permuted
        key = task_text(t_train, t_query.input) + format_grid(t_query.output)
        if _fits(t_train + [t_query]) and key not in seen:
            seen.add(key)
            pool.append((t_train, t_query))

    plain: list = []  # the leave-out tasks as they are: the task's own colours, always kept
    for train, query in base:
        add(plain, list(train), query)
    augmented: list = []
    for train, query in base:
        for aug in augs:
            colors = ColorPermutation.random(rng) if settings.permute_colors else None
            add(augmented, *augment_task(train, query, aug, colors))
    rng.shuffle(plain)
    rng.shuffle(augmented)
    return (plain + augmented)[: settings.max_examples]


class ArcDomain:
    """Domain protocol for ARC tasks (see the module docstring)."""

    def __init__(self, tokenizer, settings: ArcSettings = ArcSettings(), seed: int = 0):
        self.tok = tokenizer
        self.settings = settings
        self.seed = seed

    # --- rendering ---

    def _chat(self, user: str, assistant: str | None = None) -> str:
        messages = [{"role": "user", "content": user}]
        if assistant is None:
            if getattr(self.tok, "chat_template", None):
                return self.tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
            return user + "\n"
        messages.append({"role": "assistant", "content": assistant})
        if getattr(self.tok, "chat_template", None):
            return self.tok.apply_chat_template(messages, tokenize=False)
        return f"{user}\n{assistant}{self.tok.eos_token}"

    def example_sequence(self, train, query: Example, output_only: bool) -> TrainSequence:
        """One TTT example as chat tokens; with `output_only` the loss covers the assistant's answer only,
        the boundary found by rendering the conversation without it (no hard-coded token ids)."""
        user = task_text(train, query.input)
        full = encode_prompt(self.tok, self._chat(user, format_grid(query.output)))
        prefix = encode_prompt(self.tok, self._chat(user))
        n = len(prefix) if full[:len(prefix)] == prefix else _common_prefix(full, prefix)
        full = full[: self.settings.max_length]
        mask = [0] * min(n, len(full)) + [1] * max(0, len(full) - n) if output_only else [1] * len(full)
        return TrainSequence(tuple(full), tuple(mask))

    # --- Domain protocol ---

    def prompt(self, context: Context) -> str:
        task: ArcTask = context.payload
        return self._chat(TOOL_PROMPT.replace("{task}", task_text(task.train, task.test_input)))

    def plan(self, context: Context, self_edit: SelfEdit | None, config: ToolConfig | None = None
             ) -> UpdatePlan | Invalid:
        """The TTT plan of a self-edit (or of an explicit `config`, e.g. the oracle's)."""
        if config is None:
            if self_edit is None:
                return Invalid("ARC needs a tool config to train")
            parsed = parse_tool_config(self_edit.completion)
            if isinstance(parsed, Invalid):
                return parsed
            config = parsed
        t = config.training
        if t.num_train_epochs == 0:
            return Invalid("num_train_epochs is 0: nothing to train")
        task: ArcTask = context.payload
        tasks = ttt_tasks(task, config.groups, self.settings, seed=derive_seed(self.seed, context.id))
        if not tasks:
            return Invalid("no training examples (the task has a single demonstration)")
        steps = -(-len(tasks) // self.settings.batch_size) * t.num_train_epochs
        if steps > self.settings.max_steps:
            return Invalid(f"{steps} training steps exceed the cap of {self.settings.max_steps}")
        output_only = t.strategy == "train_using_output_tokens"
        seqs = tuple(self.example_sequence(tr, q, output_only) for tr, q in tasks)
        s = self.settings
        return UpdatePlan(seqs, LoraSpec(s.lora_r, s.lora_alpha, 0.0, s.target_modules),
                          OptimSpec(float(t.learning_rate), t.num_train_epochs, s.batch_size, "cosine"))

    def probes(self, context: Context) -> tuple[Probe, ...]:
        task: ArcTask = context.payload
        out = []
        biggest = max((len(e.output) * len(e.output[0]) for e in task.train), default=MAX_SIDE ** 2)
        budget = min(self.settings.answer_max_new_tokens, 4 * biggest + 64)  # digits, spaces, newlines, slack
        for view in VOTING_VIEWS:
            train = [Example(view.apply(e.input), view.apply(e.output)) for e in task.train]
            out.append(Probe(self._chat(task_text(train, view.apply(task.test_input))), budget))
        return tuple(out)

    def vote(self, answers: list[str]) -> Grid | None:
        """Each view's answer parsed and mapped back; the most common grid (ties: the earliest view)."""
        grids = []
        for view, text in zip(VOTING_VIEWS, answers):
            g = parse_grid(text)
            if g is not None:
                try:
                    grids.append(view.invert(g))
                except (ValueError, IndexError):
                    continue
        if not grids:
            return None
        counts = Counter(grids)
        best = max(counts.values())
        return next(g for g in grids if counts[g] == best)

    def score(self, context: Context, result: InnerResult) -> Score:
        task: ArcTask = context.payload
        if result.failed:
            return Score([False], [], failed=result.failed, train_seconds=result.train_seconds)
        voted = self.vote(result.answers)
        return Score([voted is not None and voted == task.test_output], [format_grid(voted) if voted else ""],
                     train_seconds=result.train_seconds, eval_seconds=result.eval_seconds,
                     n_steps=len(result.step_losses))


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def task_context(task: ArcTask) -> Context:
    """An ARC test input as a `Context` (its one question: the test output)."""
    gold = format_grid(task.test_output) if task.test_output is not None else ""
    return Context(task.id, task.id, task_text(task.train, task.test_input), (QA("test output", gold),),
                   payload=task)


def oracle_config() -> ToolConfig:
    """The hand-chosen TTT config the paper calls oracle (all augmentations, lr 1e-4, 2 epochs)."""
    return ToolConfig.model_validate(json.loads(
        '{"data_generation": {"use_basic_augmentations": true, "use_size_augmentations": true, '
        '"use_chain_augmentations": true, "use_repeat_augmentations": true}, '
        '"training": {"strategy": "train_using_output_tokens", "learning_rate": 1e-4, "num_train_epochs": 2}}'))
