"""Fixtures: tiny models built locally (never downloaded), records files, configs."""

from __future__ import annotations

import json
import os

import pytest

os.environ.setdefault("SEAL_PROGRESS", "0")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

torch.set_num_threads(2)

WORDS = ("the a of in was born city country works for studied at is located based company school river mayor "
         "founded year question answer passage implications read following produce list derived directly "
         "indirectly from content topic let's concisely which what who when where").split()


def make_records(n: int = 4) -> list[dict]:
    """Small passages with questions whose answers are stated in the passage."""
    people = ["Ada Lowell", "Bram Nash", "Clara Oakley", "Dorian Vance", "Esme Keller", "Felix Sutton"]
    cities = ["Calder", "Harwick", "Portree", "Zennor", "Lindale", "Foxmoor"]
    recs = []
    for i in range(n):
        name, city, year = people[i % 6], cities[(i * 5) % 6], str(1900 + 7 * i)
        recs.append({
            "title": name,
            "context": f"{name} was born in {city} in {year}. {name} works as a teacher.",
            "questions": [{"question": f"Where was {name} born?", "answer": city},
                          {"question": f"When was {name} born?", "answer": year}],
        })
    return recs


def build_random_model(path, hidden: int = 32, layers: int = 2, arch: str = "llama", seed: int = 0):
    """A random-init Llama/Qwen2 causal LM with its own BPE tokenizer and chat template, saved to `path`."""
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

    from seal.world.tokenizer import train_tokenizer

    texts = [" ".join(WORDS)] * 4 + [r["context"] + " " + q["question"] for r in make_records(6)
                                     for q in r["questions"]]
    tok = train_tokenizer(texts, 400)
    torch.manual_seed(seed)
    kw = dict(vocab_size=len(tok), hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=layers,
              num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048, tie_word_embeddings=True,
              eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id, bos_token_id=None)
    model = (LlamaForCausalLM(LlamaConfig(**kw)) if arch == "llama" else Qwen2ForCausalLM(Qwen2Config(**kw)))
    model.generation_config = GenerationConfig(eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def random_model_dir(tmp_path_factory):
    return str(build_random_model(tmp_path_factory.mktemp("random-llama")))


@pytest.fixture(scope="session")
def random_qwen_dir(tmp_path_factory):
    return str(build_random_model(tmp_path_factory.mktemp("random-qwen2"), arch="qwen2", seed=1))


@pytest.fixture
def records_file(tmp_path):
    path = tmp_path / "records.json"
    path.write_text(json.dumps(make_records(6)))
    return str(path)


@pytest.fixture
def loaded_random(random_model_dir):
    from seal.config import ModelConfig
    from seal.model import load_model

    return load_model(ModelConfig(name_or_path=random_model_dir))


@pytest.fixture
def one_thread():
    """Torch on one CPU thread for the test: models this small are overhead-bound, so one thread is as fast as
    two, and two threads spinning on an oversubscribed 2-core machine run 10-40x slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
