"""Inner-loop invariants in bfloat16, the dtype seal uses on CUDA: what `seal bench gpu` checks on a GPU.

Each `check_*` function builds a small random-init Qwen2-architecture model on `device`, runs both engines,
asserts the invariant and returns the figures it measured (a dict, written into the benchmark's JSON):

    from seal.bench.checks import check_engines_agree
    figures = check_engines_agree("cuda")     # AssertionError if the engines disagree beyond the tolerances

`tests/test_gpu.py` runs the same functions on every device present (CPU always), and the `gpu_tests` stage of
`seal bench gpu` runs them without pytest, which the GPU machines lack.

Why log-probabilities and not answers: in bfloat16 two engines that round differently pick a different
greedy token now and then, and every later token of that answer follows from it, so exact answers are a
brittle criterion. The per-token log-probabilities of one fixed continuation (teacher forcing) measure how
far apart the two adapted models are at every position, whatever either would have generated.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch

from seal.bench.inner import BenchSize, IdTokenizer, make_jobs
from seal.domains.base import Job
from seal.model import LoadedModel

# Tolerances of the bf16 engine comparison. bfloat16 keeps 8 significant bits, a relative rounding error of
# 2**-9 per operation, and the engines round in different places: peft adds the LoRA update to the base output
# in fp32 and casts once, the stacked layers cast the update to bf16 and then add; and adapters trained on
# gradients that differ by such roundings drift apart a little with every step. Measured on CPU with
# CHECK_SIZE (12 steps at lr 1e-2, which move the forced log-probabilities by 0.19 nats on average): the
# engines differ by at most 7e-4 nats in a step's loss and 4e-3 in a forced token's log-probability (1e-3 on
# average), as far as the sequential engine in bf16 is from itself in fp32. Two real bugs of the kind the
# comparison exists to catch move them 10-50x more: the lr 1.3x too high shifts losses by 0.028 and
# log-probabilities by 0.12 (0.028 on average); one epoch too few shifts log-probabilities by 0.22 (0.054 on
# average). The tolerances sit between, with an order of magnitude left for GPU kernels, whose reductions
# run in another order; `seal bench gpu` records the measured spread next to them.
LOSS_TOL = 0.01  # nats, per optimiser step
LOGPROB_TOL = 0.05  # nats, per forced token
MEAN_LOGPROB_TOL = 0.01  # nats, mean over all forced tokens: rounding noise averages out, a bug does not
MIN_MOVED = 0.1  # nats: the adapters must move the forced log-probabilities at least this much on average,
#                  or the comparison could not see a bug


def small_qwen(device: str | torch.device, dtype: torch.dtype = torch.bfloat16, *, hidden: int = 64,
               layers: int = 2, vocab: int = 256, seed: int = 0) -> LoadedModel:
    """A random-init Qwen2-architecture causal LM (biased q/k/v, grouped-query attention, untied head) with the
    id tokenizer: prompts are space-separated token ids."""
    from transformers import GenerationConfig, Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(seed)
    cfg = Qwen2Config(vocab_size=vocab, hidden_size=hidden, intermediate_size=3 * hidden, num_hidden_layers=layers,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                      tie_word_embeddings=False)
    model = Qwen2ForCausalLM(cfg).to(device=device, dtype=dtype)
    model.generation_config = GenerationConfig(eos_token_id=None, pad_token_id=0)
    model.eval().requires_grad_(False)
    return LoadedModel(model, IdTokenizer(), f"small-qwen2-{hidden}x{layers}")


# 4 sequences x 3 epochs = 12 steps at a high lr, so that the adapters move the model (see the tolerances)
CHECK_SIZE = BenchSize(sequences=4, seq_tokens=16, questions=2, answer_tokens=6, prompt_tokens=8, epochs=3, rank=8,
                       alpha=16, batch_size=1, lr=1e-2)


def check_jobs(loaded: LoadedModel, k: int = 3, size: BenchSize = CHECK_SIZE) -> list[Job]:
    return make_jobs(k, size, loaded.model.config.vocab_size, seed=7)


@dataclass
class EngineDiff:
    """How far the batched engine's adapters are from the sequential engine's, trained on the same jobs."""

    steps: int  # optimiser steps compared, all adapters together
    max_loss_diff: float  # largest |loss_sequential - loss_batched| of one step
    forced_tokens: int  # teacher-forced tokens of the jobs' training sequences compared
    max_logprob_diff: float  # largest |log p_sequential - log p_batched| of one of them
    mean_logprob_diff: float  # mean of the same
    mean_logprob_moved: float  # mean |log p_adapted - log p_base| (sequential): the signal the diffs are noise on
    answer_tokens: int  # tokens of the sequential engine's greedy answers, teacher-forced through both
    max_answer_logprob_diff: float  # largest |log p_sequential - log p_batched| of one of them
    answers_equal: int  # greedy answers identical in both engines ...
    answers: int  # ... out of this many


Rows = list[tuple[list[int], list[int]]]  # (context, continuation) token ids


@torch.no_grad()
def forced_logprobs(model, rows: Rows) -> torch.Tensor:
    """Teacher-forced log p(token | context, earlier tokens) of every continuation token of `rows`, flat, in fp32
    (rows right-padded in one batch: padding after a row cannot change it under a causal mask)."""
    device = next(model.parameters()).device
    width = max(len(c) + len(t) for c, t in rows)
    ids = torch.zeros((len(rows), width), dtype=torch.long)
    attn = torch.zeros((len(rows), width), dtype=torch.long)
    target = torch.zeros((len(rows), width), dtype=torch.bool)
    for i, (c, t) in enumerate(rows):
        ids[i, :len(c) + len(t)] = torch.tensor(c + t)
        attn[i, :len(c) + len(t)] = 1
        target[i, len(c):len(c) + len(t)] = True
    ids, attn = ids.to(device), attn.to(device)
    logp = torch.log_softmax(model(input_ids=ids, attention_mask=attn).logits[:, :-1].float(), dim=-1)
    return logp.gather(-1, ids[:, 1:].unsqueeze(-1)).squeeze(-1)[target[:, 1:].to(device)]


def training_rows(job: Job) -> Rows:
    """Every training sequence as (first token, the rest): where an adapter moves the model most."""
    return [(list(s.input_ids[:1]), list(s.input_ids[1:])) for s in job.plan.sequences]


@torch.no_grad()
def greedy_tokens(model, tokenizer, job: Job) -> list[list[int]]:
    """Each probe's greedy answer as token ids (cut at the first EOS), one probe at a time: no padding."""
    from transformers import GenerationConfig

    from seal.generate import encode_prompt

    device = next(model.parameters()).device
    out = []
    for probe in job.probes:
        ids = torch.tensor([encode_prompt(tokenizer, probe.prompt)], device=device)
        gen = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), generation_config=GenerationConfig(
            max_new_tokens=probe.max_new_tokens, do_sample=False, eos_token_id=None, pad_token_id=0))
        tokens = gen[0, ids.shape[1]:].tolist()
        eos = tokenizer.eos_token_id
        out.append(tokens[:tokens.index(eos)] if eos in tokens else tokens)
    return out


def answer_rows(tokenizer, job: Job, answers: list[list[int]]) -> Rows:
    from seal.generate import encode_prompt

    return [(encode_prompt(tokenizer, p.prompt), a) for p, a in zip(job.probes, answers) if a]


@dataclass
class _Adapted:
    """What one engine's adapter of a job gives: its step losses, forced log-probs, greedy answers, and the
    forced log-probs of the reference answers."""

    losses: list[float]
    logp: torch.Tensor
    answers: list[list[int]]
    answer_logp: torch.Tensor | None = None


def _sequential(loaded: LoadedModel, jobs: list[Job]) -> list[_Adapted]:
    """Each job through one peft adapter, trained as the sequential engine trains it."""
    from peft import get_peft_model

    from seal.inner.sequential import init_adapter, peft_config, train_adapter

    out = []
    for job in jobs:
        peft_model = get_peft_model(loaded.model, peft_config(loaded.model, job.plan.lora))
        try:
            init_adapter(peft_model, job.seed)
            losses = train_adapter(peft_model, job.plan, job.seed)
            peft_model.eval()
            answers = greedy_tokens(peft_model, loaded.tokenizer, job)
            rows = answer_rows(loaded.tokenizer, job, answers)
            out.append(_Adapted(losses, forced_logprobs(peft_model, training_rows(job)), answers,
                                forced_logprobs(peft_model, rows) if rows else None))
        finally:
            peft_model.unload()
            loaded.model.requires_grad_(False).eval()
    return out


def _batched(loaded: LoadedModel, jobs: list[Job], reference: list[_Adapted]) -> list[_Adapted]:
    """All jobs as one chunk of the batched engine, each adapter read out through the router."""
    from seal.inner.batched import BatchedEngine

    def through(k: int, rows: Rows) -> torch.Tensor:
        with batch.router.route(torch.full((len(rows),), k, device=loaded.device)):
            return forced_logprobs(loaded.model, rows)

    out = []
    with BatchedEngine().trained(loaded, jobs) as batch:
        for k, (job, ref) in enumerate(zip(jobs, reference)):
            with batch.router.route(torch.tensor([k], device=loaded.device)):
                answers = greedy_tokens(loaded.model, loaded.tokenizer, job)
            rows = answer_rows(loaded.tokenizer, job, ref.answers)
            out.append(_Adapted(batch.adapters[k].losses, through(k, training_rows(job)), answers,
                                through(k, rows) if rows else None))
    return out


def compare_engines(loaded: LoadedModel, jobs: list[Job]) -> EngineDiff:
    """Train `jobs` with both engines on `loaded` and measure how far apart the adapted models are."""
    base = [forced_logprobs(loaded.model, training_rows(j)) for j in jobs]
    seq = _sequential(loaded, jobs)
    bat = _batched(loaded, jobs, seq)
    if [len(a.losses) for a in seq] != [len(b.losses) for b in bat]:
        raise AssertionError(f"step counts differ: sequential {[len(a.losses) for a in seq]}, batched "
                             f"{[len(b.losses) for b in bat]}")
    loss_diffs = [abs(x - y) for a, b in zip(seq, bat) for x, y in zip(a.losses, b.losses)]
    logp_diffs = torch.cat([(a.logp - b.logp).abs() for a, b in zip(seq, bat)])
    moved = torch.cat([(a.logp - b).abs() for a, b in zip(seq, base)])
    ans_diffs = torch.cat([torch.zeros(0)] + [(a.answer_logp - b.answer_logp).abs().cpu() for a, b in zip(seq, bat)
                                              if a.answer_logp is not None])
    pairs = [(x, y) for a, b in zip(seq, bat) for x, y in zip(a.answers, b.answers)]
    return EngineDiff(steps=len(loss_diffs), max_loss_diff=max(loss_diffs), forced_tokens=logp_diffs.numel(),
                      max_logprob_diff=logp_diffs.max().item(), mean_logprob_diff=logp_diffs.mean().item(),
                      mean_logprob_moved=moved.mean().item(), answer_tokens=ans_diffs.numel(),
                      max_answer_logprob_diff=ans_diffs.max().item() if ans_diffs.numel() else 0.0,
                      answers_equal=sum(x == y for x, y in pairs), answers=len(pairs))


def check_engines_agree(device: str | torch.device, dtype: torch.dtype = torch.bfloat16) -> dict:
    """The batched engine equals the sequential engine in bf16: per-step losses within LOSS_TOL; log-probabilities
    of the training tokens and of the sequential engine's answers, teacher-forced through both, within
    LOGPROB_TOL each and MEAN_LOGPROB_TOL on average."""
    loaded = small_qwen(device, dtype)
    diff = compare_engines(loaded, check_jobs(loaded))
    assert diff.mean_logprob_moved >= MIN_MOVED, f"the adapters barely move the model: {diff}"
    assert math.isfinite(diff.max_loss_diff) and diff.max_loss_diff <= LOSS_TOL, f"losses differ: {diff}"
    assert diff.max_logprob_diff <= LOGPROB_TOL, f"log-probabilities differ: {diff}"
    assert diff.max_answer_logprob_diff <= LOGPROB_TOL, f"log-probabilities of the answers differ: {diff}"
    assert diff.mean_logprob_diff <= MEAN_LOGPROB_TOL, f"log-probabilities differ on average: {diff}"
    return {**asdict(diff), "tolerances": {"loss": LOSS_TOL, "logprob": LOGPROB_TOL,
                                           "mean_logprob": MEAN_LOGPROB_TOL, "min_moved": MIN_MOVED}}


def check_base_bit_identical(device: str | torch.device, dtype: torch.dtype = torch.bfloat16,
                             rounds: int = 2) -> dict:
    """After `rounds` inner loops of each engine the base model's weights are bit-identical and frozen, and no
    adapter module is left behind."""
    from seal.inner.batched import BatchedEngine
    from seal.inner.engine import evaluate
    from seal.inner.sequential import SequentialEngine

    loaded = small_qwen(device, dtype)
    before = {k: v.detach().clone() for k, v in loaded.model.state_dict().items()}
    jobs = check_jobs(loaded, k=2)
    for _ in range(rounds):
        for engine in (SequentialEngine(), BatchedEngine(max_adapters_per_batch=2)):
            assert all(r.step_losses for r in evaluate(engine, loaded, jobs))
    after = loaded.model.state_dict()
    assert set(after) == set(before), f"modules left behind: {sorted(set(after) ^ set(before))[:4]}"
    changed = [k for k, v in before.items() if not torch.equal(v, after[k])]
    assert not changed, f"base weights changed: {changed[:4]}"
    assert not any(p.requires_grad for p in loaded.model.parameters()), "base weights left trainable"
    return {"inner_loops": rounds * 2 * len(jobs), "tensors": len(before)}


def check_export_reload(device: str | torch.device, dtype: torch.dtype = torch.bfloat16, tmp_dir=None) -> dict:
    """An adapter exported from a batch and loaded back with peft gives the batch's log-probabilities (within
    LOGPROB_TOL: peft and the stacked layers round the update differently in bf16)."""
    import tempfile

    from peft import PeftModel

    from seal.inner.batched import BatchedEngine

    loaded = small_qwen(device, dtype)
    jobs = check_jobs(loaded, k=2)
    rows = training_rows(jobs[1])
    with tempfile.TemporaryDirectory(dir=tmp_dir) as tmp:
        with BatchedEngine().trained(loaded, jobs) as batch:
            out = batch.export(1, f"{tmp}/adapter")
            with batch.router.route(torch.full((len(rows),), 1, device=loaded.device)):
                inside = forced_logprobs(loaded.model, rows)
        base = forced_logprobs(loaded.model, rows)
        peft_model = PeftModel.from_pretrained(loaded.model, str(out))
        try:
            reloaded = forced_logprobs(peft_model, rows)
        finally:
            peft_model.unload()
    moved = (inside - base).abs().max().item()
    diff = (reloaded - inside).abs().max().item()
    assert moved > 10 * diff, f"the adapter barely changes the model (moved {moved:.4f}, diff {diff:.4f})"
    assert diff <= LOGPROB_TOL, f"reloaded adapter differs from the batch by {diff:.4f} nats"
    return {"max_logprob_diff": diff, "adapter_moved_logprobs_by": moved}


CHECKS = {"engines_agree_bf16": check_engines_agree, "base_bit_identical_bf16": check_base_bit_identical,
          "export_reload_bf16": check_export_reload}
