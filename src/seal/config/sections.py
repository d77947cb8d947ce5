"""Every config section: one pydantic model per concern, each field with a type, a default, bounds and a help
line (`docs/config.md` is generated from them by `seal config-docs`). LoRA and optimiser fields come from
`seal.config.fields`, declared once; `resume_safe` fields may change when a run resumes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from seal.config.fields import Section, lora_fields, optim_fields, resume_safe, update_spec
from seal.domains.base import UpdateSpec


class ConfigError(ValueError):
    """A config problem, phrased for the user: where it is and what to do."""


# --- model ---------------------------------------------------------------------------------------------


class ModelConfig(Section):
    name_or_path: str = Field(
        "tiny",
        description="Hugging Face causal LM: a local directory, a hub id, or `tiny` for the built-in model "
        "pretrained on the synthetic world.",
    )
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "auto", description="Weights dtype. `auto`: bfloat16 on CUDA, float32 on CPU."
    )
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="`auto`: CUDA when available.")
    trust_remote_code: bool = Field(
        False, description="Allow a model repository's own Python code to run. Off unless you trust it."
    )
    revision: str | None = Field(None, description="Hub revision (branch, tag or commit) to load.")
    cache_dir: str | None = resume_safe(
        None, description="Where the built-in tiny model is built and cached (default: $SEAL_CACHE or ~/.cache/seal)."
    )


# --- data ----------------------------------------------------------------------------------------------


class SourceConfig(Section):
    kind: Literal["records", "squad", "world", "arc", "arc_world"] = Field(
        "records",
        description="`records`: a JSON/JSONL file of {title, context, questions}; `squad`: a SQuAD dataset as "
        "`datasets` loads it (hub id, local dir, parquet or json), one record per passage; `world`: the built-in "
        "synthetic world; `arc`: an ARC-AGI challenges file (with `solutions`) or one task file; `arc_world`: "
        "generated ARC-like tasks.",
    )
    path: str | None = Field(None, description="File, directory or hub id (records/squad/arc).")
    solutions: str | None = Field(None, description="ARC solutions file matching the challenges file (`arc`).")
    task_ids: list[str] | None = Field(None, description="`arc`: keep only these task ids (e.g. the paper's subset).")
    split: str | None = Field(
        None, description="`datasets` split for squad (train/validation); `train` or `eval` for the world."
    )
    wording: Literal["standard", "heldout", "reward", "mixed", "every"] = Field(
        "standard", description="`world`: ask the questions in the templates of pretraining (`standard`), in "
        "held-out wordings that pretraining, RL and the self-edit demonstrations never use (`heldout`), in "
        "wordings of their own for the RL passages' reward (`reward`), each question in both the standard and the "
        "reward wording (`mixed`), or in every standard template of its relation (`every`, what the tiny demo's "
        "RL passages use; docs/tiny-world.md)."
    )

    @model_validator(mode="after")
    def _check(self):
        if self.kind == "arc" and self.path and not Path(self.path).exists():
            raise ValueError(f"ARC challenges file does not exist: {self.path}")
        if self.solutions and not Path(self.solutions).exists():
            raise ValueError(f"ARC solutions file does not exist: {self.solutions}")
        if self.kind == "arc_world" and self.split not in (None, "train", "eval"):
            raise ValueError("arc_world split must be `train` or `eval`")
        if self.kind in ("records", "squad", "arc") and not self.path:
            raise ValueError(f"data source of kind '{self.kind}' needs a `path`")
        if self.kind == "records" and self.path and not Path(self.path).exists():
            raise ValueError(f"records file does not exist: {self.path}")
        if self.kind == "world" and self.split not in (None, "train", "eval"):
            raise ValueError("world split must be `train` or `eval`")
        if self.wording != "standard" and self.kind != "world":
            raise ValueError(f"`wording` applies to the built-in world, not to a source of kind '{self.kind}'")
        return self


class TeacherConfig(Section):
    path: str | None = Field(
        None,
        description="Records file whose `completions` field holds teacher self-edits (e.g. GPT-4.1's), matched "
        "to eval passages by title and context.",
    )
    base_url: str | None = Field(None, description="OpenAI-compatible endpoint that writes teacher self-edits.")
    model: str | None = Field(None, description="Model name at `base_url`.")
    api_key_env: str = Field("OPENAI_API_KEY", description="Environment variable holding the endpoint's key.")
    samples: int = Field(1, ge=1, le=32, description="Teacher self-edits used per passage.")

    @model_validator(mode="after")
    def _check(self):
        if self.path and not Path(self.path).exists():
            raise ValueError(f"teacher file does not exist: {self.path}")
        if self.base_url and not self.model:
            raise ValueError("teacher `base_url` needs a `model`")
        return self

    @property
    def enabled(self) -> bool:
        return bool(self.path or self.base_url)


class DataConfig(Section):
    train: SourceConfig = Field(
        default_factory=lambda: SourceConfig(kind="world", split="train"),
        description="Passages the ReST-EM rounds train on.",
    )
    eval: SourceConfig = Field(
        default_factory=lambda: SourceConfig(kind="world", split="eval"),
        description="Held-out passages of the results table.",
    )
    n_eval: int = Field(200, ge=1, description="Eval passages (the paper: 200).")
    eval_selection: Literal["paper", "seeded"] = Field(
        "paper",
        description="`paper`: `random.seed(42); random.shuffle(records)`, first n_eval (the paper's split); "
        "`seeded`: the same with the run seed.",
    )
    disjoint: bool = Field(
        True,
        description="When train and eval read the same source, train passages are drawn from those not in eval.",
    )
    teacher: TeacherConfig = Field(default_factory=TeacherConfig, description="Teacher self-edits (optional).")
    max_records: int | None = Field(None, ge=1, description="Read at most this many records per file.")

    @model_validator(mode="after")
    def _heldout_stays_held_out(self):
        if self.train.wording == "heldout":
            raise ValueError("data.train.wording: `heldout` would ask the RL passages in the wordings kept for "
                             "the table (data.eval.wording); use `standard`, `every`, `reward` or `mixed`")
        return self


# --- generation ----------------------------------------------------------------------------------------

PromptStyle = Literal["implications", "implications_long", "implications_very_long", "rewrite", "self_qa"]


class GenerationConfig(Section):
    prompt_style: PromptStyle = Field("implications", description="Self-edit prompt of the paper's ablation.")
    chat: bool = Field(
        False,
        description="Instruct models: put a system message and the passage through the tokenizer's chat "
        "template instead of the base-model prompt.",
    )
    temperature: float = Field(1.0, ge=0.0, le=5.0, description="Sampling temperature (the paper: 1.0).")
    top_p: float = Field(0.95, gt=0.0, le=1.0, description="Nucleus sampling (the paper: 0.95).")
    max_new_tokens: int = Field(1024, ge=1, le=32768, description="Longest self-edit in tokens.")
    batch_size: int = Field(32, ge=1, description="Prompts per generate call.")


# --- sequences -----------------------------------------------------------------------------------------


class SequencesConfig(Section):
    split_separator: str | None = Field("---", description="Split a self-edit on this string first (None: off).")
    split_lines: bool = Field(True, description="Then make each non-empty line its own sequence.")
    drop_preamble: bool = Field(
        True, description="Drop a first line like 'Here are the implications:' when the next starts a numbered list."
    )
    split_self_qa: bool = Field(True, description="Split self-QA completions at each `Question N:`.")
    title_prefix: bool = Field(True, description="Each sequence is '{title}\\n{text}'.")
    append_passage: bool = Field(True, description="Append '{title}\\n{context}' as the last sequence.")
    loss_mask_substring: str | None = Field(
        None, description="Train only on the tokens after the first occurrence of this string in each sequence."
    )
    max_sequences: int = Field(256, ge=1, description="Keep at most this many sequences from one self-edit.")


# --- inner loop ----------------------------------------------------------------------------------------


class InnerConfig(
    optim_fields(lr=1e-3, epochs=10, batch_size=1, lr_help="AdamW learning rate (the paper: 1e-3).",
                 epochs_help="Epochs over the self-edit's sequences (the paper: 10).",
                 batch_help="Sequences per optimiser step (the paper: 1)."),
    lora_fields(r=32, alpha=64, dropout=True),
):
    engine: Literal["sequential", "batched"] = Field(
        "batched", description="`sequential`: one peft adapter at a time (the reference); `batched`: many at once."
    )
    backend: Literal["local", "ray"] = Field(
        "local",
        description="`local`: this process; `ray`: a pool of Ray workers (settings in `ray`) runs inner loops, "
        "self-edit sampling and the policy SFT (knowledge experiment).",
    )
    max_length: int = Field(2048, ge=8, description="Training sequences are truncated to this many tokens.")
    answer_max_new_tokens: int = Field(64, ge=1, le=4096, description="Greedy answer length (the paper: 64).")
    max_adapters_per_batch: int = resume_safe(
        0, ge=0, description="Batched engine: adapters trained at once; 0 picks from model size and memory."
    )
    eval_batch_size: int = resume_safe(64, ge=1, description="Questions answered per generate call.")
    split_by_length: bool = resume_safe(
        False, description="Batched engine: split each step's rows into micro-batches of similar length instead of "
        "padding them to the longest (the same update up to float summation order; 1.8x faster ARC TTT on a CPU, "
        "`seal bench arc`)."
    )


# --- grader --------------------------------------------------------------------------------------------


class JudgeConfig(Section):
    base_url: str = Field("https://api.openai.com/v1", description="OpenAI-compatible endpoint.")
    model: str = Field("gpt-4.1", description="Judge model (the paper: GPT-4.1).")
    api_key_env: str = Field("OPENAI_API_KEY", description="Environment variable holding the key (never the key).")
    timeout_s: float = resume_safe(60.0, gt=0.0, description="Per-request timeout.")
    max_retries: int = resume_safe(5, ge=0, le=20, description="Retries on timeouts, 429 and 5xx, with backoff.")
    backoff_s: float = resume_safe(1.0, ge=0.0, description="First backoff; doubles each retry.")
    concurrency: int = resume_safe(8, ge=1, le=256, description="Requests in flight at once.")


class GraderConfig(Section):
    kind: Literal["exact", "strict", "f1", "judge"] = Field(
        "exact",
        description="`exact`: normalised gold contained in the answer; `strict`: the answer's first sentence, "
        "normalised, equals the normalised gold (SQuAD exact match; for models that answer with the span alone); "
        "`f1`: token F1 >= threshold; `judge`: an LLM judge (the paper's).",
    )
    f1_threshold: float = Field(0.5, gt=0.0, le=1.0, description="`f1` grader: F1 needed to count as correct.")
    judge: JudgeConfig = Field(default_factory=JudgeConfig, description="`judge` grader settings.")


# --- ReST-EM -------------------------------------------------------------------------------------------


class SFTConfig(
    optim_fields(lr=3e-4, epochs=2, batch_size=1, schedule=False, grad_accum=5,
                 lr_help="Policy learning rate (the paper: 3e-4).", epochs_help="Policy SFT epochs (the paper: 2).",
                 batch_help="Per-step batch (the paper: 1).",
                 grad_accum_help="Gradient accumulation (the paper: 5 on each of 2 GPUs)."),
    lora_fields(r=64, alpha=128, targets=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
                who="Policy LoRA", targets_help="Policy LoRA targets (the paper: all seven projections)."),
):
    mode: Literal["lora", "full"] = Field("lora", description="LoRA then merge (the paper), or full finetuning.")
    max_length: int = Field(2048, ge=8, description="Prompt + completion tokens kept.")
    start: Literal["policy", "base"] = Field(
        "policy", description="What each round's M-step finetunes: the round's policy (the SEAL paper: the merged "
        "model becomes the next round's policy), or the base model afresh on that round's kept self-edits "
        "(ReST-EM as Singh et al., 2023 run it, against drift from the base model; docs/knowledge.md)."
    )


class RestEMConfig(Section):
    rounds: int = resume_safe(2, ge=0, le=100,
                              description="ReST-EM rounds (the paper: 2). 0 evaluates the base only.")
    n_passages: int = Field(50, ge=1, description="Training passages per round (the paper: 50).")
    samples: int = Field(5, ge=1, le=256, description="Self-edits sampled per passage (the paper: 5).")
    repeats: int = Field(3, ge=1, le=32, description="Inner loops per self-edit, averaged (the paper: 3).")
    top_k: int = Field(1, ge=1, description="Self-edits kept per passage.")
    require_beat_baseline: bool = Field(
        False, description="Keep a self-edit only if it beats its passage's no-adaptation accuracy."
    )
    min_reward: float = Field(0.0, ge=0.0, le=1.0, description="Keep only self-edits with mean reward above this.")
    min_kept: int = Field(
        1, ge=1, le=100_000, description="Run the M-step only when a round keeps at least this many self-edits; "
        "with fewer the policy goes to the next round unchanged (a guard against finetuning for several epochs on "
        "one or two kept self-edits; tried on the tiny ARC demo, docs/arc.md)."
    )
    resample_passages: bool = Field(True, description="Draw new training passages each round.")
    reward_questions: Literal["gold", "generated"] = Field(
        "gold", description="What a self-edit is rewarded on: the passage's `gold` questions (the paper), or the "
        "`select` part of the questions the writer generated (`questions`; label-free SEAL, docs/label-free.md)."
    )
    sft: SFTConfig = Field(default_factory=SFTConfig, description="The M-step: SFT of the policy.")


# --- eval ----------------------------------------------------------------------------------------------


class EvalConfig(Section):
    samples: int = Field(1, ge=1, le=64, description="Self-edits per eval passage in the self-edit rows.")
    repeats: int = Field(1, ge=1, le=32, description="Inner loops per self-edit in the table rows.")
    passage_only: bool = Field(True, description="Row: LoRA on the passage alone.")
    passage_repeated: bool = Field(
        False,
        description="Row (a control the paper lacks): the passage alone, trained for as many optimiser steps as "
        "the last SEAL row's self-edits took.",
    )
    base_self_edits: bool = Field(True, description="Row: passage + self-edits of the base model.")
    questions: Literal["gold", "generated", "both"] = Field(
        "gold", description="What the table asks: `gold` questions, the held-out `report` part of the generated "
        "questions, or `both` (rows' `accuracy` on gold, `generated_accuracy` on generated)."
    )
    every_round: bool = resume_safe(True, description="Rows `seal_round_r` for every round, not only the last.")
    bootstrap_resamples: int = resume_safe(
        10_000, ge=100, le=1_000_000, description="Resamples of each row's bootstrap interval and each paired "
        "comparison (docs/knowledge.md, grading and statistics)."
    )
    confidence: float = resume_safe(0.95, gt=0.5, lt=1.0, description="Level of the intervals.")


# --- generated questions -------------------------------------------------------------------------------


class EndpointConfig(Section):
    base_url: str | None = Field(None, description="OpenAI-compatible endpoint (`questions.writer: endpoint`).")
    model: str | None = Field(None, description="Model name at `base_url`.")
    api_key_env: str = Field("OPENAI_API_KEY", description="Environment variable holding the key (never the key).")


class QuestionsConfig(Section):
    """The question writer of label-free SEAL (seal.domains.questions; docs/label-free.md)."""

    writer: str = Field(
        "base", description="Who writes the questions, fixed for the whole run (never the policy being trained): "
        "`base` (the run's initial model), `endpoint` (`questions.endpoint`), or any HF model dir or hub id."
    )
    endpoint: EndpointConfig = Field(default_factory=EndpointConfig, description="The writer endpoint.")
    n_candidates: int = Field(16, ge=1, le=1024, description="Candidate pairs written per passage.")
    pairs_per_completion: int = Field(4, ge=1, le=64, description="Pairs one writer completion is asked for.")
    max_per_passage: int = Field(8, ge=1, le=256, description="Questions kept per passage (select + report).")
    grounding: Literal["open_book", "span"] = Field(
        "open_book", description="`open_book`: kept when the writer, shown the passage, gives the same answer; "
        "`span`: kept when the answer appears in the passage (drops questions about what the passage implies)."
    )
    temperature: float = Field(1.0, ge=0.0, le=5.0, description="Writer sampling temperature.")
    top_p: float = Field(0.95, gt=0.0, le=1.0, description="Writer nucleus sampling.")
    max_new_tokens: int = Field(256, ge=1, le=8192, description="Tokens per writer completion.")
    answer_max_new_tokens: int = Field(32, ge=1, le=1024, description="Tokens of an open-book grounding answer.")
    prompt_style: Literal["base", "chat"] = Field(
        "base", description="`base`: our base-model prompt; `chat`: through the writer's chat template."
    )
    report_fraction: float = Field(
        0.5, ge=0.0, le=1.0, description="Share of each passage's questions held out for the table (`report`); "
        "the rest (`select`) rewards self-edits. A seeded hash of the normalised question decides."
    )
    hold_out: Literal["all", "reported"] = Field(
        "all", description="Which passages hold `report_fraction` of their questions out of the reward: `all` "
        "(every passage), or `reported` (only passages the table asks about; a training passage the table never "
        "reports on rewards self-edits with all its questions)."
    )
    max_question_chars: int = Field(300, ge=1, description="Longer questions are dropped.")
    max_question_words: int = Field(40, ge=1, description="Longer questions are dropped.")
    max_answer_chars: int = Field(100, ge=1, description="Longer answers are dropped.")
    max_answer_words: int = Field(12, ge=1, description="Longer answers are dropped.")
    max_line_chars: int = Field(500, ge=1, description="Longer writer lines are dropped unread.")

    @model_validator(mode="after")
    def _check(self):
        if self.writer == "endpoint" and not (self.endpoint.base_url and self.endpoint.model):
            raise ValueError("writer 'endpoint' needs questions.endpoint.base_url and questions.endpoint.model")
        return self


# --- ARC -----------------------------------------------------------------------------------------------


class ArcConfig(lora_fields(r=128, alpha=16, targets=["q_proj", "v_proj", "gate_proj", "up_proj", "down_proj"],
                            who="TTT LoRA", targets_help="TTT LoRA targets (the paper's).")):
    max_examples: int = Field(250, ge=1, le=10_000, description="TTT examples per self-edit, at most (the paper: 250).")
    max_steps: int = Field(375, ge=1, description="A config needing more optimiser steps is not trained (reward 0).")
    batch_size: int = Field(2, ge=1, le=256, description="TTT batch size (the paper: 2).")
    leave_out: list[int] = Field([1, 2], description="Leave-k-out task sizes built from the demonstrations.")
    max_length: int = Field(8192, ge=64, description="TTT sequences are truncated to this many tokens.")
    answer_max_new_tokens: int = Field(2048, ge=8, description="Upper bound of a predicted grid's tokens.")
    permute_colors: bool = Field(
        False, description="Also give each augmented TTT task a random colour permutation (it changes the rule of a "
        "colour-mapping task, so it is off by default)."
    )
    per_family: int = Field(8, ge=1, le=10_000, description="`arc_world` sources: tasks per family and split.")
    train_per_family: int | None = Field(
        None, ge=1, le=10_000, description="`arc_world` sources of the `train` split: tasks per family (None: "
        "`per_family`), so that the eval tasks can grow without changing the pool ReST-EM draws from."
    )
    families: list[str] | None = Field(
        None, description="`arc_world` sources: rule families to draw from (None: all; see seal.world.arc_tasks)."
    )
    icl: bool = Field(True, description="Row: in-context learning only (no TTT).")
    base_self_edits: bool = Field(True, description="Row: TTT with the base model's configs (no RL).")
    oracle: dict | None = Field(
        None,
        description="Row `oracle_ttt` with this fixed tool config; None: the paper's (all augmentations, lr 1e-4, "
        "2 epochs, output tokens).",
    )
    oracle_row: bool = Field(True, description="Row: TTT with the oracle config.")

    @field_validator("families")
    @classmethod
    def _families(cls, v):
        from seal.world.arc_tasks import FAMILIES

        unknown = [f for f in v or [] if f not in FAMILIES]
        if unknown:
            raise ValueError(f"unknown families {unknown}; known: {', '.join(FAMILIES)}")
        return v


# --- ray ------------------------------------------------------------------------------------------------


class RayConfig(Section):
    address: str | None = Field(
        None, description="Ray cluster to join (`auto`, or `ray://host:10001`); None starts a local one."
    )
    num_workers: int = Field(1, ge=1, le=4096, description="Inner-loop worker actors (e.g. one per GPU).")
    num_gpus_per_worker: float | Literal["auto"] = Field(
        "auto", description="GPUs per worker; fractional shares a GPU (0.5: two workers per GPU); 0 on CPUs; "
        "`auto`: 1 when the cluster has GPUs, else 0."
    )
    num_cpus_per_worker: float = Field(1.0, gt=0.0, description="CPUs per worker (also its torch threads).")
    sft_num_gpus: float | Literal["auto"] = Field(
        "auto", description="GPUs of the policy-SFT task; `auto`: 1 when the cluster has GPUs, else 0."
    )
    start_timeout_s: float = Field(
        600.0, gt=0.0, description="How long to wait for the pool's workers to be placed and started."
    )
    max_chunk_retries: int = Field(
        2, ge=0, le=20, description="Times a chunk whose worker died is retried on a fresh worker before it is "
        "recorded as failed."
    )

    @field_validator("num_gpus_per_worker", "sft_num_gpus")
    @classmethod
    def _gpus(cls, v):
        if v != "auto" and v < 0:
            raise ValueError("must be >= 0 or 'auto'")
        return v


# --- continued pretraining and continual self-edits ------------------------------------------------------


class UpdateConfig(
    optim_fields(lr=1e-3, epochs=3, batch_size=4, grad_accum=2,
                 lr_help="AdamW peak learning rate (the paper's CPT: 1e-3).",
                 epochs_help="Epochs over the corpus (the paper's CPT: 3).",
                 batch_help="Sequences per micro-batch (the paper's CPT: 4).",
                 grad_accum_help="Micro-batches per optimiser step (the paper's CPT: 2)."),
    lora_fields(r=32, alpha=64, cite="the paper's CPT"),
):
    """One finetuning run over a pooled corpus (CPT) or one step's self-edit (continual)."""

    mode: Literal["lora", "full"] = Field(
        "lora", description="LoRA merged into the weights afterwards, or full finetuning of every weight."
    )

    def update_spec(self) -> UpdateSpec:
        return update_spec(self)


class CPTConfig(Section):
    n_passages: int | None = Field(
        None, ge=1, description="Passages pooled into one update (None: data.n_eval; the paper: 200 and 2067)."
    )
    samples: int = Field(5, ge=0, le=64, description="Self-edits per passage in the pooled corpus (the paper: 5).")
    update: UpdateConfig = Field(default_factory=UpdateConfig, description="The one finetuning run of each row.")
    passage_only: bool = Field(True, description="Row: the passages alone.")
    passage_repeated: bool = Field(
        False,
        description="Row (a control the paper lacks): the passages alone, repeated to as many training sequences, "
        "and so optimiser steps, as the base self-edit corpus (the first self-edit row when that one is off).",
    )
    base_self_edits: bool = Field(True, description="Row: passages + the base model's self-edits.")
    policy: str | None = Field(
        None,
        description="A SEAL checkpoint (e.g. runs/demo/checkpoints/round-2) whose self-edits make the `seal` row; "
        "they train the base model, like every other row.",
    )
    train_seal: bool = Field(
        False,
        description="Train the `seal` row's policy in this run first: `restem.rounds` ReST-EM rounds on "
        "`data.train` (passages disjoint from the CPT ones), as the knowledge experiment trains it.",
    )

    @model_validator(mode="after")
    def _one_policy(self):
        if self.policy and self.train_seal:
            raise ValueError("cpt.policy and cpt.train_seal both name the seal row's policy: set one")
        return self


class ContinualConfig(Section):
    sequences: int = Field(8, ge=1, le=1000, description="Independent sequences averaged (the paper: 8).")
    steps: int = Field(8, ge=1, le=1000,
                       description="Passages per sequence, edited one after another (the paper: 8).")
    modes: list[Literal["merge", "library"]] = Field(
        ["merge"],
        description="`merge`: each step's LoRA is merged into the weights (the paper); `library`: each step's "
        "adapter is kept apart and every question is answered through the adapter of the passage the router "
        "(`router`) picks, which cannot forget by construction.",
    )
    self_edit: bool = Field(True, description="Train on passage + self-edit (False: the passage alone).")
    router: Literal["embedding", "bm25"] = Field(
        "embedding", description="Library mode: how a question finds its passage's adapter: the base model's "
        "mean-pooled hidden states, or lexical BM25 over the passages' words."
    )
    route_on: Literal["prompt", "question"] = Field(
        "prompt", description="Library mode: route on the whole answer prompt (it names the passage's title) or on "
        "the question alone; routing is reported both ways."
    )
    keep_checkpoints: bool = Field(
        False,
        description="Keep every step's merged model (default: only the latest, for resuming; disk stays bounded).",
    )

    @field_validator("modes")
    @classmethod
    def _modes(cls, v: list[str]) -> list[str]:
        if not v or len(set(v)) != len(v):
            raise ValueError("modes must name `merge` and/or `library`, each once")
        return v


# --- metrics ------------------------------------------------------------------------------------------


class LogConfig(Section):
    sinks: list[Literal["tensorboard", "wandb"]] = Field(
        [], description="Where metrics go besides the console and summary.json: `tensorboard` (event files under "
        "`dir`), `wandb` (Weights & Biases; `wandb_mode: offline` keeps them on disk)."
    )
    dir: str | None = Field(None, description="TensorBoard/W&B files (default: `<run dir>/logs`).")
    wandb_project: str = Field("seal", description="W&B project.")
    wandb_mode: Literal["online", "offline"] = Field(
        "online", description="`offline`: W&B writes to `dir` only (sync later with `wandb sync`)."
    )


class LearnConfig(Section):
    """`seal learn`: documents in, a model that knows them out (docs/learn.md)."""

    documents: list[str] = resume_safe(
        [], description="Files, directories or globs to learn (`seal learn DOCS...`); a resume compares their "
        "content, not these paths."
    )
    passage_tokens: int = Field(256, ge=8, le=32768, description="Longest passage, in the model's tokens.")
    overlap_sentences: int = Field(0, ge=0, le=16, description="Sentences repeated between consecutive passages.")
    samples: int = Field(4, ge=1, le=64, description="Self-edits written per passage (K).")
    select: Literal["best", "all"] = Field(
        "best", description="`best`: per passage the self-edit with the highest reward on its generated `select` "
        "questions (label-free); `all`: every self-edit."
    )
    policy: str | None = Field(
        None, description="A SEAL checkpoint (`seal run`'s checkpoints/round-r) that writes the self-edits; None: "
        "the model itself, or the teacher endpoint when `data.teacher` is set."
    )
    mode: Literal["merged", "library"] = Field(
        "merged", description="`merged`: one update over every passage and self-edit (LoRA, saved as `adapter/`, "
        "or full finetuning, `merged/`); `library`: one LoRA adapter per document (`adapters/`) and a router."
    )
    router: Literal["bm25", "embedding"] = Field(
        "bm25", description="Library mode: how a question finds its document's adapter (lexical BM25, or the base "
        "model's embeddings)."
    )
    update: UpdateConfig = Field(default_factory=UpdateConfig, description="The update (per document in library).")
    save_merged: bool = Field(False, description="Merged LoRA mode: also write the merged model as `merged/`.")
    gold: str | None = Field(None, description="Records whose questions are asked before and after (`--gold`).")
    control: str | None = Field(
        None, description="Records about passages not learned, asked before and after: a forgetting check."
    )

    @model_validator(mode="after")
    def _check(self):
        if self.mode == "library" and self.update.mode != "lora":
            raise ValueError("library mode trains one LoRA adapter per document: set learn.update.mode=lora")
        for key in ("gold", "control"):
            path = getattr(self, key)
            if path and not Path(path).exists():
                raise ValueError(f"learn.{key}: records file does not exist: {path}")
        return self


class RunConfig(Section):
    experiment: Literal["knowledge", "cpt", "continual", "arc", "learn"] = Field(
        "knowledge",
        description="`knowledge`: single-passage SEAL (ReST-EM rounds + table); `cpt`: many passages pooled into "
        "one update; `continual`: passages edited one after another; `arc`: few-shot ARC with tool-config "
        "self-edits and test-time training; `learn`: `seal learn` (documents in, a model that knows them out).",
    )
    seed: int = Field(0, ge=0, description="Run seed; every sample's seed derives from it and the sample's key.")
    name: str = resume_safe("run", description="Run name, used for the default run directory `runs/<name>`.")
    model: ModelConfig = Field(default_factory=ModelConfig, description="The base model (policy and inner base).")
    data: DataConfig = Field(default_factory=DataConfig, description="Where passages come from.")
    generation: GenerationConfig = Field(default_factory=GenerationConfig, description="Self-edit sampling.")
    sequences: SequencesConfig = Field(
        default_factory=SequencesConfig, description="How a self-edit becomes training sequences."
    )
    inner: InnerConfig = Field(default_factory=InnerConfig, description="The inner loop (LoRA finetune + answers).")
    grader: GraderConfig = Field(default_factory=GraderConfig, description="How answers are graded.")
    restem: RestEMConfig = Field(default_factory=RestEMConfig, description="The outer RL loop.")
    eval: EvalConfig = Field(default_factory=EvalConfig, description="The results table.")
    ray: RayConfig = Field(default_factory=RayConfig, description="The Ray pool (`inner.backend: ray`).")
    arc: ArcConfig = Field(default_factory=ArcConfig, description="`experiment: arc` settings.")
    cpt: CPTConfig = Field(default_factory=CPTConfig, description="`experiment: cpt` settings.")
    continual: ContinualConfig = Field(default_factory=ContinualConfig,
                                       description="`experiment: continual` settings.")
    questions: QuestionsConfig = Field(default_factory=QuestionsConfig,
                                       description="The question writer (label-free rewards and reports).")
    learn: LearnConfig = Field(default_factory=LearnConfig, description="`seal learn` settings.")
    log: LogConfig = resume_safe(default_factory=LogConfig, description="Metric sinks (TensorBoard, W&B).")

    @model_validator(mode="after")
    def _cpt_trains_seal_in_rounds(self):
        if self.experiment == "cpt" and self.cpt.train_seal and self.restem.rounds < 1:
            raise ValueError("cpt.train_seal needs restem.rounds >= 1")
        return self

    @model_validator(mode="after")
    def _label_free_is_knowledge(self):
        if self.needs_generated_questions and self.experiment not in ("knowledge", "learn"):
            raise ValueError("generated questions (restem.reward_questions / eval.questions) are supported by the "
                             "knowledge experiment and `seal learn`")
        return self

    @property
    def needs_generated_questions(self) -> bool:
        return self.restem.reward_questions == "generated" or self.eval.questions != "gold"

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not v or "/" in v or v.startswith("."):
            raise ValueError("name must be a plain directory name")
        return v


