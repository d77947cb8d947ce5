"""The tiny-model builder: a normal HF directory, reproducible."""

import json

import pytest
import torch

from seal.world.tiny_knowledge import TinySpec, build_tiny_model

SMALL = TinySpec(hidden=32, layers=1, heads=2, intermediate=64, vocab=400, block=64, batch=4, epochs=1,
                 max_entities=6, warmup=2, demos=20, drills=10, induction_steps=3, induction_batch=2, probe_every=50)


def weight_figure(path) -> float:
    """Sum of |w| over every weight of a build (a figure two builds share when their weights match)."""
    from safetensors.torch import load_file

    return float(sum(t.double().abs().sum() for t in load_file(path / "model.safetensors").values()))


# The old code's reduced builds (two pretraining loops, before the single `seal.world.pretrain.pretrain`; commit
# a24607e, fp32, CPU, 2 threads): the single loop must give the same weights (it gave them bit for bit).
OLD_KNOWLEDGE_FIGURE = 1943.2599735209687  # SMALL (probe_every does not touch the weights)
OLD_ARC_FIGURE = 467.0757908064661


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    return build_tiny_model(tmp_path_factory.mktemp("b") / "tiny", SMALL)


def test_build_writes_a_loadable_hf_directory(built):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(built)
    model = AutoModelForCausalLM.from_pretrained(built)
    assert tok.eos_token == "<|endoftext|>" and tok.pad_token_id == tok.eos_token_id
    assert model.config.model_type == "llama" and model.generation_config.eos_token_id == tok.eos_token_id
    chat = tok.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True)
    assert chat == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
    meta = json.loads((built / "seal_build.json").read_text())
    assert meta["spec"]["hidden"] == 32 and meta["final_loss"] > 0
    assert meta["probes"] and all(0.0 <= p[k] <= 1.0 for p in meta["probes"] for k in ("recall", "copy", "values",
                                                                                 "induction"))
    assert (built / "model.safetensors").exists() and not (built.parent / "tiny.tmp").exists()


def test_build_is_reproducible(built, tmp_path):
    from safetensors.torch import load_file

    again = build_tiny_model(tmp_path / "again", SMALL)
    a, b = load_file(built / "model.safetensors"), load_file(again / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert weight_figure(built) == pytest.approx(OLD_KNOWLEDGE_FIGURE, rel=1e-5)


def test_small_build_leaves_the_shared_world_whole(built):
    """A build on `max_entities` pretraining entities uses a world of its own: the cached default world, which
    the rest of the process reads, keeps every entity."""
    from seal.world.generator import SPLIT_SIZES, default_world

    assert len(default_world().entities["pretrain"]) == sum(SPLIT_SIZES["pretrain"].values())


def test_lr_schedule_warms_up_holds_then_decays_to_zero():
    from seal.world.pretrain import lr_factor

    spec = TinySpec(warmup=10, decay_frac=0.2)
    f = [lr_factor(s, 100, spec) for s in range(101)]
    assert f[0] == pytest.approx(0.1) and f[9] == 1.0 and f[50] == f[79] == 1.0
    assert f[80] == 1.0 > f[90] > f[99] > 0.0 and f[100] == 0.0


def test_document_packing_never_cuts_a_document_that_fits_and_masks_the_padding(built):
    import random

    from transformers import AutoTokenizer

    from seal.world.tiny_knowledge import _blocks

    tok = AutoTokenizer.from_pretrained(built)
    eos = tok.eos_token
    docs = [f"doc {i} " + "word " * (3 + 7 * (i % 5)) + eos for i in range(40)] + ["long " * 200 + eos]
    lengths = [len(tok(d, add_special_tokens=False)["input_ids"]) for d in docs]
    width = 33
    packed = _blocks(docs, tok, width - 1, random.Random(0), "documents")
    ids, labels = packed[:, 0], packed[:, 1]
    assert packed.shape[1:] == (2, width)
    pad = labels == -100
    assert torch.equal(ids[~pad], labels[~pad]) and (ids[pad] == tok.pad_token_id).all()
    assert all(not pad[b, :k].any() for b in range(len(packed)) for k in [int((~pad[b]).sum())])  # pads only at the end
    # every token is packed once, and each document that fits in a block lies whole inside one block
    assert int((~pad).sum()) == sum(lengths)
    texts = [tok.decode(ids[b][~pad[b]]) for b in range(len(packed))]
    for d, n in zip(docs, lengths):
        if n <= width:
            assert any(d in t for t in texts)
    stream = _blocks(docs, tok, width - 1, random.Random(0), "stream")
    assert torch.equal(stream[:, 0], stream[:, 1]) and len(stream) == sum(lengths) // width
    with pytest.raises(ValueError, match="unknown packing"):
        _blocks(docs, tok, width - 1, random.Random(0), "zigzag")


def test_tiny_arc_build_is_a_reproducible_chat_model(tmp_path):
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from seal.world.tiny_arc import TinyArcSpec, build_tiny_arc_model

    spec = TinyArcSpec(hidden=32, layers=1, heads=2, intermediate=64, vocab=320, batch=4, epochs=1, warmup=2,
                       tasks_per_epoch=24, tool_demos=8)
    a, b = build_tiny_arc_model(tmp_path / "a", spec), build_tiny_arc_model(tmp_path / "b", spec)
    tok, model = AutoTokenizer.from_pretrained(a), AutoModelForCausalLM.from_pretrained(a)
    assert tok.chat_template and len(tok("1203", add_special_tokens=False)["input_ids"]) == 4  # a token a cell
    assert model.config.hidden_size == 32 and model.generation_config.eos_token_id == tok.eos_token_id
    meta = json.loads((a / "seal_build.json").read_text())
    assert meta["spec"]["tasks_per_epoch"] == 24 and len(meta["probes"]) == 1 and "torch" in meta
    wa, wb = load_file(a / "model.safetensors"), load_file(b / "model.safetensors")
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
    assert weight_figure(a) == pytest.approx(OLD_ARC_FIGURE, rel=1e-5)


def test_ensure_built_prefers_the_shipped_copy_then_the_cache_and_builds_once(tmp_path):
    from seal.world.pretrain import ensure_built

    calls = []

    def build(target):
        calls.append(target)
        target.mkdir(parents=True)
        (target / "config.json").write_text("{}")

    shipped = tmp_path / "assets" / "m"
    assert ensure_built(shipped, "m", build, str(tmp_path / "cache")) == tmp_path / "cache" / "m"
    assert ensure_built(shipped, "m", build, str(tmp_path / "cache")) == tmp_path / "cache" / "m"
    assert calls == [tmp_path / "cache" / "m"]  # built on first use only
    build(shipped)
    assert ensure_built(shipped, "m", build, str(tmp_path / "cache")) == shipped


def test_induction_score_tells_a_copying_model_from_one_that_does_not_copy():
    """The probe's `induction`: ~1 for a model that predicts, at each token, what followed its previous
    occurrence; ~1/vocabulary for one that predicts uniformly."""
    from types import SimpleNamespace

    from seal.world import pools as P
    from seal.world.tiny_knowledge import induction_score
    from seal.world.tokenizer import train_tokenizer

    tok = train_tokenizer([" ".join(P.SURNAMES + P.CITIES + P.YEARS + P.OCCUPATIONS + P.INDUSTRIES)] * 4, 3072)
    vocab = len(tok)

    class Copier:
        def __call__(self, input_ids):
            ids = input_ids[0].tolist()
            logits = torch.zeros(1, len(ids), vocab)
            for t, token in enumerate(ids):
                earlier = [i for i in range(t) if ids[i] == token]
                if earlier:
                    logits[0, t, ids[earlier[-1] + 1]] = 50.0
            return SimpleNamespace(logits=logits)

    class Uniform:
        def __call__(self, input_ids):
            return SimpleNamespace(logits=torch.zeros(1, input_ids.shape[1], vocab))

    assert induction_score(Copier(), tok) > 0.9
    assert induction_score(Uniform(), tok) == pytest.approx(1 / vocab, rel=1e-3)


def test_induction_warmup_trains_on_copy_drills_before_the_corpus_and_is_recorded(built, tmp_path):
    from dataclasses import replace

    from safetensors.torch import load_file

    plain = build_tiny_model(tmp_path / "plain", replace(SMALL, induction_steps=0, probe_every=0))
    meta = json.loads((built / "seal_build.json").read_text())  # SMALL warms up for 3 steps
    assert meta["induction_warmup"]["steps"] == 3 and meta["induction_warmup"]["final_loss"] > 0
    assert 0.0 <= meta["induction_warmup"]["induction"] <= 1.0
    assert json.loads((plain / "seal_build.json").read_text())["induction_warmup"] is None
    a, b = load_file(plain / "model.safetensors"), load_file(built / "model.safetensors")
    assert not torch.equal(a["model.layers.0.self_attn.q_proj.weight"], b["model.layers.0.self_attn.q_proj.weight"])


def test_context_target_documents_are_trained_on_the_target_only(built):
    """A (context, target) document (the corpus's copy drills) packs both parts but masks the context's labels,
    in either packing."""
    import random

    from transformers import AutoTokenizer

    from seal.world.tiny_knowledge import _blocks

    tok = AutoTokenizer.from_pretrained(built)
    eos = tok.eos_token
    ctx, tgt = "Lowell Calder 1907\n", "Lowell Calder 1907" + eos
    n_ctx, n_tgt = (len(tok(t, add_special_tokens=False)["input_ids"]) for t in (ctx, tgt))
    docs = [(ctx, tgt), "plain text here" + eos] * 6
    n_plain = len(tok(docs[1], add_special_tokens=False)["input_ids"])
    for packing in ("documents", "stream"):
        packed = _blocks(docs, tok, 47, random.Random(0), packing)
        ids, labels = packed[:, 0], packed[:, 1]
        trained = labels != -100
        assert torch.equal(ids[trained], labels[trained])
        if packing == "documents":  # nothing cut: every target and plain token trained, no context token
            assert int(trained.sum()) == 6 * (n_tgt + n_plain)
            assert int((ids != tok.pad_token_id).sum()) >= 6 * (n_ctx + n_tgt + n_plain) - 12  # EOS ids = pad id
        else:
            assert int((~trained).sum()) <= 6 * n_ctx and int((~trained).sum()) >= n_ctx


def test_attention_lr_scale_zero_leaves_attention_as_it_was(built, tmp_path):
    """`attention_lr_scale` scales the corpus's learning rate for the attention projections only (keeping an
    induction head formed in the warm-up): at 0 they stay as the build started them, the MLPs still train."""
    from dataclasses import replace

    from safetensors.torch import load_file

    later = build_tiny_model(tmp_path / "later", replace(SMALL, attention_lr_scale=0.0, probe_every=0, induction_steps=0),
                               init_from=built)
    a, b = load_file(built / "model.safetensors"), load_file(later / "model.safetensors")
    attn = [k for k in a if "self_attn" in k]
    assert attn and all(torch.equal(a[k], b[k]) for k in attn)
    assert not torch.equal(a["model.layers.0.mlp.up_proj.weight"], b["model.layers.0.mlp.up_proj.weight"])
    assert json.loads((later / "seal_build.json").read_text())["spec"]["attention_lr_scale"] == 0.0
