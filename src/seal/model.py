"""Loading a causal LM and its tokenizer, and the few facts about a model that other modules derive from it.

One function owns each derivation (default LoRA targets, device, dtype), so nothing model-specific is
hard-coded elsewhere.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch

from seal.config import ModelConfig


class ModelLoadError(RuntimeError):
    pass


@dataclass
class LoadedModel:
    """A model, its tokenizer and where it came from."""

    model: torch.nn.Module
    tokenizer: object
    path: str  # local directory or hub id it was loaded from

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device


def pick_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise ModelLoadError("model.device is 'cuda' but no CUDA device is available")
    return torch.device(device)


def pick_dtype(dtype: str, device: torch.device) -> torch.dtype:
    if dtype == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    return getattr(torch, dtype)


def resolve_model_path(cfg: ModelConfig) -> str:
    """`tiny` / `tiny-arc` name the built-in models (shipped, or built and cached on first use); anything else is
    passed on."""
    if cfg.name_or_path == "tiny":
        from seal.world.tiny_knowledge import ensure_tiny_model

        return str(ensure_tiny_model(cache_dir=cfg.cache_dir))
    if cfg.name_or_path == "tiny-arc":
        from seal.world.tiny_arc import ensure_tiny_arc_model

        return str(ensure_tiny_arc_model(cache_dir=cfg.cache_dir))
    return cfg.name_or_path


def _looks_local(name: str) -> bool:
    return name.startswith((".", "/", "~")) or os.path.exists(name)


def load_tokenizer(path: str, trust_remote_code: bool = False, revision: str | None = None):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code, revision=revision)
    if tok.pad_token_id is None:
        # Padding never reaches the loss (masked) nor the answers (attention mask); reusing EOS is safe.
        tok.pad_token = tok.eos_token
    if tok.eos_token_id is None:
        raise ModelLoadError(f"tokenizer at {path} has no EOS token: self-edits could never stop")
    tok.padding_side = "left"  # generation appends on the right
    return tok


def load_model(cfg: ModelConfig, path: str | None = None) -> LoadedModel:
    """Load `cfg.name_or_path` (or an explicit `path`, e.g. a round checkpoint) for training and generation."""
    from transformers import AutoModelForCausalLM

    path = path or resolve_model_path(cfg)
    if _looks_local(path) and not Path(path).expanduser().is_dir():
        raise ModelLoadError(f"model directory not found: {path}")
    device = pick_device(cfg.device)
    dtype = pick_dtype(cfg.dtype, device)
    try:
        tok = load_tokenizer(path, cfg.trust_remote_code, cfg.revision)
        model = AutoModelForCausalLM.from_pretrained(
            path,
            dtype=dtype,
            trust_remote_code=cfg.trust_remote_code,
            revision=cfg.revision,
            use_safetensors=True,
        )
    except (OSError, ValueError) as e:
        hint = "" if _looks_local(path) else " (not a local directory; is the hub reachable, or set HF_HUB_OFFLINE=1 with a cached copy?)"
        raise ModelLoadError(f"could not load model '{path}'{hint}: {e}") from e
    model.to(device)
    model.eval()
    model.requires_grad_(False)
    return LoadedModel(model=model, tokenizer=tok, path=path)


def default_target_modules(model: torch.nn.Module) -> list[str]:
    """The LoRA targets peft uses for this architecture (q_proj, v_proj for Llama and Qwen2)."""
    from peft.utils.constants import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING as MAPPING

    model_type = getattr(getattr(model, "config", None), "model_type", None)
    if model_type in MAPPING:
        return list(MAPPING[model_type])
    raise ValueError(
        f"no default LoRA targets known for model type '{model_type}'; set inner.target_modules explicitly"
    )


def count_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
