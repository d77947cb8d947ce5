"""Question writers: the model that writes and grounds questions (`seal.domains.questions.QuestionWriter`), as a
local Hugging Face model or an OpenAI-compatible endpoint. Either is fixed for the whole run, never the policy.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Sequence

from seal.domains.knowledge import render_chat
from seal.domains.questions import QuestionWriterError, WriterPrompt
from seal.generate import SamplingParams, generate_batch, greedy_answers
from seal.store import derive_seed


class ModelWriter:
    """A local Hugging Face model (`seal.model.LoadedModel`) as the writer. Load it from the run's initial model
    (or any model directory) as its own copy: the policy changes every round, the writer must not."""

    def __init__(self, loaded, name: str | None = None, batch_size: int = 32):
        self.loaded = loaded
        self.name = name or str(loaded.path)
        self.batch_size = batch_size

    def render(self, prompt: WriterPrompt) -> str:
        if prompt.chat:
            text = render_chat(self.loaded.tokenizer, prompt.system, prompt.user)
        else:
            text = f"{prompt.system}\n\n{prompt.user}" if prompt.system else prompt.user
        return text + prompt.prefill

    def sample(self, prompt: WriterPrompt, n: int, params: SamplingParams, seed: int) -> list[str]:
        model, text, out = self.loaded.model, self.render(prompt), []
        was_training = model.training
        model.eval()
        for b, start in enumerate(range(0, n, self.batch_size)):
            k = min(self.batch_size, n - start)
            out += generate_batch(model, self.loaded.tokenizer, [text] * k, params, greedy=False,
                                  seed=derive_seed(seed, b))
        model.train(was_training)
        return [prompt.prefill + t for t in out]

    def answer(self, prompts: Sequence[WriterPrompt], max_new_tokens: int) -> list[str]:
        return greedy_answers(self.loaded.model, self.loaded.tokenizer, [self.render(p) for p in prompts],
                              max_new_tokens, self.batch_size)


@dataclass(frozen=True)
class EndpointSpec:
    """An OpenAI-compatible `/chat/completions` endpoint (a vLLM server, a hosted API)."""

    base_url: str
    model: str
    api_key_env: str = "OPENAI_API_KEY"  # the variable's name, never the key
    timeout_s: float = 120.0
    max_retries: int = 5  # on timeouts, 429 and 5xx, with backoff
    backoff_s: float = 1.0  # first backoff; doubles each retry
    concurrency: int = 4  # requests in flight at once


class EndpointWriter:
    """An endpoint as the writer. `prefill` is not sent (chat APIs write the whole reply); the prompt names the
    format, and the reply is parsed from its start."""

    def __init__(self, spec: EndpointSpec, client=None):
        import httpx

        key = os.environ.get(spec.api_key_env)
        if not key:
            raise QuestionWriterError(f"the question writer endpoint needs its API key in the environment variable "
                                      f"{spec.api_key_env}, which is not set")
        self.spec = spec
        self.name = f"{spec.model}@{spec.base_url}"
        self._headers = {"Authorization": f"Bearer {key}"}
        self.client = client or httpx.Client(base_url=spec.base_url.rstrip("/"), timeout=spec.timeout_s)

    def _chat(self, prompt: WriterPrompt, **sampling) -> str:
        import httpx

        messages = ([{"role": "system", "content": prompt.system}] if prompt.system else []) + [
            {"role": "user", "content": prompt.user}]
        body = {"model": self.spec.model, "messages": messages, **sampling}
        delay, why = self.spec.backoff_s, ""
        for attempt in range(self.spec.max_retries + 1):
            try:
                resp = self.client.post("/chat/completions", json=body, headers=self._headers)
                if resp.status_code == 200:
                    content = resp.json()["choices"][0]["message"]["content"]
                    return content if isinstance(content, str) else ""
                why = f"HTTP {resp.status_code}"
                if resp.status_code < 500 and resp.status_code != 429:
                    break  # other client errors will not get better
            except (httpx.HTTPError, ValueError, KeyError, IndexError, TypeError) as e:
                why = type(e).__name__
            if attempt < self.spec.max_retries:
                time.sleep(delay)
                delay *= 2
        raise QuestionWriterError(f"question writer endpoint {self.spec.base_url} ({self.spec.model}) failed: {why}")

    def _map(self, fn, items: Sequence) -> list[str]:
        with ThreadPoolExecutor(max_workers=self.spec.concurrency) as pool:
            return list(pool.map(fn, items))

    def sample(self, prompt: WriterPrompt, n: int, params: SamplingParams, seed: int) -> list[str]:
        return self._map(lambda s: self._chat(prompt, temperature=params.temperature, top_p=params.top_p,
                                              max_tokens=params.max_new_tokens, seed=derive_seed(seed, s)), range(n))

    def answer(self, prompts: Sequence[WriterPrompt], max_new_tokens: int) -> list[str]:
        return self._map(lambda p: self._chat(p, temperature=0, max_tokens=max_new_tokens), prompts)
