"""Answering closed-book through what `seal learn` wrote: `seal ask OUT_DIR "question"`.

    learned = Learned.open("learned/")          # reads learn.json; loads the model as the output holds it
    learned.answer(["Where was Milo Halden born?"])
    Learned.open("learned/", base=True)         # the model before learning, for comparison

The prompt is `ASK_PROMPT` (the paper's closed-book prompt without its topic line: a user's question comes with
no passage title), the same one `seal learn` grades its before/after report with. Library outputs route each
question to one document's adapter (`router.json`), as the run did.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from seal.config import ModelConfig
from seal.domains.knowledge import ASK_PROMPT
from seal.generate import greedy_answers
from seal.inner.library import Router, adapters_loaded
from seal.model import LoadedModel, load_model


class LearnedError(ValueError):
    pass


@dataclass
class Learned:
    """A model as `seal learn` left it: merged (an adapter merged into the base, or fully finetuned weights),
    or a library (the base, one adapter per document and a router)."""

    loaded: LoadedModel
    router: Router | None = None
    adapter_dirs: list[Path] | None = None

    @classmethod
    def open(cls, out_dir: str | Path, base: bool = False, device: str = "auto") -> "Learned":
        out_dir = Path(out_dir)
        meta_path = out_dir / "learn.json"
        if not meta_path.exists():
            raise LearnedError(f"{out_dir} holds no learn.json: is it the --out of a finished `seal learn`?")
        meta = json.loads(meta_path.read_text())
        loaded = load_model(ModelConfig(name_or_path=meta["model"], device=device))
        return cls(loaded) if base else cls.from_outputs(loaded, out_dir, meta["outputs"])

    @classmethod
    def from_outputs(cls, loaded: LoadedModel, out_dir: Path, outputs: dict) -> "Learned":
        """`loaded` (the model before learning) with what `seal learn` wrote into `out_dir` (learn.json's
        `outputs`): the merged model, the adapter merged into it, or the library."""
        if "merged" in outputs:
            return cls(load_model(ModelConfig(name_or_path=str(out_dir / outputs["merged"]),
                                              device=loaded.device.type)))
        if "adapter" in outputs:
            from peft import PeftModel

            merged = PeftModel.from_pretrained(loaded.model, str(out_dir / outputs["adapter"])).merge_and_unload()
            loaded.model = merged.eval().requires_grad_(False)
            return cls(loaded)
        router = Router.from_json(json.loads((out_dir / outputs["router"]).read_text()))
        return cls(loaded, router, [out_dir / outputs["adapters"] / name for name in router.names])

    def answer(self, questions: list[str], max_new_tokens: int = 64, batch_size: int = 64) -> list[str]:
        prompts = [ASK_PROMPT.format(question=q) for q in questions]
        if self.router is None:
            return greedy_answers(self.loaded.model, self.loaded.tokenizer, prompts, max_new_tokens, batch_size)
        choice = self.router.route(questions, self.loaded)
        answers = [""] * len(questions)
        with self.library() as model:
            for a in sorted(set(choice)):
                idx = [i for i, c in enumerate(choice) if c == a]
                model.set_adapter(f"a{a}")
                for i, text in zip(idx, greedy_answers(model, self.loaded.tokenizer, [prompts[i] for i in idx],
                                                       max_new_tokens, batch_size)):
                    answers[i] = text
        return answers

    @contextmanager
    def library(self) -> Iterator[object]:
        """The base model with every document's adapter attached (`a0`, `a1`, ... in `router.names` order)."""
        with adapters_loaded(self.loaded, self.adapter_dirs) as model:
            yield model
