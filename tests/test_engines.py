"""Inner-loop engines: the base model is restored exactly; the batched engine equals the reference."""

import itertools

import pytest
import torch

from seal.domains.base import Job, LoraSpec, OptimSpec, Probe, TrainSequence, UpdatePlan
from seal.inner.batched import BatchedEngine, length_groups
from seal.inner.engine import evaluate
from seal.inner.sequential import SequentialEngine


def seqs(tok, texts, mask_prefix=0):
    out = []
    for t in texts:
        ids = tok(t)["input_ids"]
        mask = [0] * mask_prefix + [1] * (len(ids) - mask_prefix)
        out.append(TrainSequence(tuple(ids), tuple(mask[: len(ids)])))
    return tuple(out)


TEXTS = ["Ada Lowell was born in Calder in 1907.", "Bram Nash works for the company.", "the river of the city",
         "Clara Oakley studied at the school in Portree.", "who founded the company in 1950"]
PROBES = (Probe("Question: Where was Ada Lowell born?\nAnswer:\n", 6), Probe("Who founded the company?", 5))


def jobs_with_unequal_plans(tok):
    lora = LoraSpec(r=4, alpha=8)
    return [
        Job(UpdatePlan(seqs(tok, TEXTS[:2]), lora, OptimSpec(lr=1e-2, epochs=3)), PROBES, seed=1),
        Job(UpdatePlan(seqs(tok, TEXTS), lora, OptimSpec(lr=5e-3, epochs=2, batch_size=2, schedule="cosine")),
            PROBES, seed=2),
        Job(UpdatePlan(seqs(tok, TEXTS[3:], mask_prefix=3), lora,
                       OptimSpec(lr=2e-2, epochs=1, schedule="constant", warmup_steps=1, weight_decay=0.1)),
            PROBES[:1], seed=3),
        Job(UpdatePlan(seqs(tok, TEXTS[1:4]), lora, OptimSpec(lr=1e-2, epochs=4, batch_size=3, max_grad_norm=None)),
            PROBES, seed=4),
    ]


def snapshot(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def assert_bit_identical(before, model):
    after = model.state_dict()
    assert set(after) == set(before), "adapter modules were left behind"
    for k, v in before.items():
        assert torch.equal(v, after[k]), k


@pytest.mark.parametrize("engine", [SequentialEngine(), BatchedEngine(max_adapters_per_batch=3)],
                         ids=["sequential", "batched"])
def test_base_weights_bit_identical_after_many_inner_loops(loaded_random, engine):
    before = snapshot(loaded_random.model)
    jobs = jobs_with_unequal_plans(loaded_random.tokenizer) * 2
    results = evaluate(engine, loaded_random, jobs)
    assert all(r.step_losses for r in results)
    assert_bit_identical(before, loaded_random.model)
    assert not any(p.requires_grad for p in loaded_random.model.parameters())
    assert type(loaded_random.model).__name__ == "LlamaForCausalLM"


def test_adapter_training_lowers_loss(loaded_random):
    tok = loaded_random.tokenizer
    job = Job(UpdatePlan(seqs(tok, TEXTS[:1]), LoraSpec(4, 8), OptimSpec(lr=5e-2, epochs=20)), PROBES, seed=0)
    (res,) = SequentialEngine().run_chunk(loaded_random, [job])
    assert len(res.step_losses) == 20 and res.step_losses[-1] < 0.95 * res.step_losses[0]


@pytest.mark.parametrize("split", [False, True], ids=["one-padded-batch", "micro-batches-by-length"])
def test_batched_equals_sequential(loaded_random, split):
    """Same seeds and data: per-step losses and greedy answers of every adapter match (fp32, CPU)."""
    jobs = jobs_with_unequal_plans(loaded_random.tokenizer)
    ref = SequentialEngine().run_chunk(loaded_random, jobs)
    engine = BatchedEngine(max_adapters_per_batch=8, split_by_length=split)
    engine.split_overhead = 0  # these rows are short: without this they would stay one batch
    out = evaluate(engine, loaded_random, jobs)
    for job, a, b in zip(jobs, ref, out):
        assert len(a.step_losses) == len(b.step_losses) == job.plan.n_steps
        assert a.step_losses == pytest.approx(b.step_losses, rel=1e-4, abs=1e-5)
        assert a.answers == b.answers


def test_batched_with_qwen2(random_qwen_dir):
    from seal.config import ModelConfig
    from seal.model import load_model

    loaded = load_model(ModelConfig(name_or_path=random_qwen_dir))
    jobs = jobs_with_unequal_plans(loaded.tokenizer)[:2]
    ref = SequentialEngine().run_chunk(loaded, jobs)
    out = evaluate(BatchedEngine(), loaded, jobs)
    for a, b in zip(ref, out):
        assert a.step_losses == pytest.approx(b.step_losses, rel=1e-4, abs=1e-5)
        assert a.answers == b.answers


def test_chunks_group_by_shape_and_are_deterministic(loaded_random):
    tok = loaded_random.tokenizer
    plan = lambda r, n: UpdatePlan(seqs(tok, TEXTS[:n]), LoraSpec(r, 2 * r), OptimSpec(epochs=1))
    jobs = [Job(plan(4, 1), PROBES), Job(None, PROBES), Job(plan(8, 2), PROBES), Job(plan(4, 3), PROBES),
            Job(plan(4, 2), PROBES)]
    eng = BatchedEngine(max_adapters_per_batch=2)
    chunks = eng.chunks(loaded_random, jobs)
    assert chunks == eng.chunks(loaded_random, jobs)
    assert sorted(i for c in chunks for i in c) == list(range(5))
    assert [1] in chunks and [2] in chunks  # base-only jobs apart; rank 8 apart from rank 4
    assert [3, 4] in chunks and [0] in chunks  # longest first


@pytest.mark.parametrize("engine", [SequentialEngine(), BatchedEngine()], ids=["sequential", "batched"])
def test_non_finite_loss_fails_only_that_adapter(loaded_random, engine):
    tok = loaded_random.tokenizer
    good = Job(UpdatePlan(seqs(tok, TEXTS[:2]), LoraSpec(4, 8), OptimSpec(lr=1e-2, epochs=2)), PROBES, seed=1)
    bad = Job(UpdatePlan(seqs(tok, TEXTS[:2]), LoraSpec(4, 8), OptimSpec(lr=float("inf"), epochs=3)),
              PROBES, seed=2)
    before = snapshot(loaded_random.model)
    ref = SequentialEngine().run_chunk(loaded_random, [good])[0]
    res_good, res_bad = evaluate(engine, loaded_random, [good, bad])
    assert res_bad.failed and "non-finite loss" in res_bad.failed and res_bad.answers == []
    assert res_good.failed is None
    assert res_good.step_losses == pytest.approx(ref.step_losses, rel=1e-4, abs=1e-5)
    assert_bit_identical(before, loaded_random.model)


def test_export_is_a_standard_peft_adapter(loaded_random, tmp_path):
    """An adapter of a batch, saved and loaded back with peft, gives the same logits as inside the batch."""
    from peft import PeftModel

    jobs = jobs_with_unequal_plans(loaded_random.tokenizer)[:3]
    model = loaded_random.model
    x = torch.tensor([loaded_random.tokenizer("Ada Lowell was born in")["input_ids"]])
    with BatchedEngine().trained(loaded_random, jobs) as batch:
        out_dir = batch.export(1, tmp_path / "adapter")
        with batch.router.route(torch.tensor([1])):
            expected = model(input_ids=x).logits
    assert (out_dir / "adapter_config.json").exists() and (out_dir / "adapter_model.safetensors").exists()
    base_logits = model(input_ids=x).logits
    peft_model = PeftModel.from_pretrained(model, str(out_dir))
    got = peft_model(input_ids=x).logits
    assert not torch.allclose(expected, base_logits, atol=1e-4)  # the adapter does something
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)
    peft_model.unload()


# The first losses of `jobs_with_unequal_plans` on the session's random Llama (seed 0), from the sequential
# engine at the commit that pinned them (fp32, CPU, 2 threads). Both engines must reproduce them within 1e-5
# relative: a change to the data order, the LoRA init, the loss or the schedule shows here first.
FIRST_LOSSES = [[6.0345855, 6.0592651, 6.0057979], [6.0161347, 6.0455198, 6.0081639], [5.9965029, 6.0356531],
                [6.0100455, 5.9955916, 5.9828620]]


@pytest.mark.parametrize("engine", [SequentialEngine(), BatchedEngine(max_adapters_per_batch=4)],
                         ids=["sequential", "batched"])
def test_first_losses_are_pinned(loaded_random, engine):
    results = evaluate(engine, loaded_random, jobs_with_unequal_plans(loaded_random.tokenizer))
    got = [r.step_losses[:3] for r in results]
    assert got == [pytest.approx(p, rel=1e-5) for p in FIRST_LOSSES]


def _cost(lengths, groups, overhead):
    return sum(max(lengths[i] for i in g) * len(g) + overhead for g in groups)


@pytest.mark.parametrize("lengths", [[5], [84, 383, 131, 90, 250, 131, 88, 415], [10, 10, 10, 10],
                                     [1, 200, 2, 199, 3, 198]])
def test_length_groups_is_the_cheapest_split_of_the_sorted_rows(lengths):
    overhead = 64
    groups = length_groups(lengths, overhead)
    assert sorted(i for g in groups for i in g) == list(range(len(lengths)))  # a partition of the rows
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    best = min(_cost(lengths, [order[a:b] for a, b in zip((0, *cuts), (*cuts, len(order)))], overhead)
               for n in range(len(order)) for cuts in itertools.combinations(range(1, len(order)), n))
    assert _cost(lengths, groups, overhead) == best
    if lengths == [10, 10, 10, 10]:
        assert groups == [[0, 1, 2, 3]]  # equal lengths: one batch, nothing to gain from a split
    if lengths == [1, 200, 2, 199, 3, 198]:
        assert sorted(map(sorted, groups)) == [[0, 2, 4], [1, 3, 5]]
