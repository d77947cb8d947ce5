"""The local backend: everything in this process, on its one device."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

from seal.backends.chunks import free_model, generate_local, run_chunk_safely, save_model_copy
from seal.config import RunConfig
from seal.domains.base import InnerResult, Job
from seal.generate import SamplingParams
from seal.inner.engine import make_engine


class LocalBackend:
    """`seal.backends` verbs in this process."""

    name = "local"

    def __init__(self, cfg: RunConfig):
        self.cfg = cfg
        self.engine = make_engine(cfg.inner)

    @property
    def engine_name(self) -> str:
        return self.engine.name

    def load(self, path: str | None = None):
        from seal.model import load_model

        return load_model(self.cfg.model, path=path)

    def free(self, loaded) -> None:
        free_model(loaded)

    def generate_batches(self, loaded, batches: list[tuple[int, list[str]]], params: SamplingParams,
                         seeds: list[int]) -> Iterator[tuple[int, list[str]]]:
        return generate_local(loaded, batches, params, seeds)

    def chunks(self, loaded, jobs: list[Job]) -> list[list[int]]:
        return self.engine.chunks(loaded, jobs)

    def run_chunks(self, loaded, jobs: list[Job], chunks: list[list[int]]
                   ) -> Iterator[tuple[list[int], list[InnerResult]]]:
        for ch in chunks:
            yield ch, run_chunk_safely(self.engine, loaded, [jobs[i] for i in ch])

    def sft(self, loaded, examples: list[tuple[str, str]], out_dir: Path, seed: int) -> Path:
        from seal.outer.sft import sft_policy

        return sft_policy(loaded, examples, self.cfg.restem.sft, out_dir, seed)

    def save_copy(self, loaded, out_dir: Path) -> Path:
        return save_model_copy(loaded, out_dir)

    def close(self) -> None:
        pass
