"""The config's building blocks: the base section, fields that a resumed run may change, and the LoRA and
optimiser fields, declared once here and reused by every section that trains something (the inner loop, the
policy SFT, ARC's test-time training, lasting updates), each with its own defaults.

    class InnerConfig(lora_fields(r=32, alpha=64, dropout=True), optim_fields(lr=1e-3, epochs=10, batch_size=1)):
        ...
    cfg.inner.lora_spec(), cfg.inner.optim_spec()   # the seam types the inner loop takes

No `from __future__ import annotations` here: the sections below are built inside functions, and pydantic reads
their annotations as real types.
"""

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from seal.domains.base import LoraSpec, OptimSpec, UpdateSpec

RESUME_SAFE = "resume_safe"


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False)


def resume_safe(default: Any = ..., **kw) -> Any:
    """A field that changes speed, memory or logging but never results: a resumed run may change it (every
    other key is compared with the run directory's config.yaml and a difference is refused)."""
    extra = {"json_schema_extra": {RESUME_SAFE: True}}
    return Field(**extra, **kw) if "default_factory" in kw else Field(default, **extra, **kw)


def lora_fields(*, r: int, alpha: int, targets: list[str] | None = None, who: str = "LoRA",
                cite: str = "the paper", targets_help: str | None = None, dropout: bool = False) -> type[Section]:
    """A section mixin with a LoRA shape (`lora_r`, `lora_alpha`, `target_modules`, optionally
    `lora_dropout`) and its conversion to `LoraSpec`."""
    targets_help = targets_help or ("Modules to adapt; None: the architecture's defaults (q_proj, v_proj for "
                                    "Llama/Qwen2).")

    class LoraFields(Section):
        lora_r: int = Field(r, ge=1, le=1024, description=f"{who} rank ({cite}: {r}).")
        lora_alpha: int = Field(alpha, ge=1, description=f"{who} alpha ({cite}: {alpha}).")
        target_modules: list[str] | None = Field(targets, description=targets_help)

        def lora_spec(self) -> LoraSpec:
            return LoraSpec(self.lora_r, self.lora_alpha, getattr(self, "lora_dropout", 0.0),
                            tuple(self.target_modules) if self.target_modules else None)

    if not dropout:
        return LoraFields

    class LoraDropoutFields(LoraFields):
        lora_dropout: float = Field(0.0, ge=0.0, lt=1.0, description=f"{who} dropout ({cite}: 0).")

    return LoraDropoutFields


def optim_fields(*, lr: float, epochs: int, batch_size: int, lr_help: str, epochs_help: str, batch_help: str,
                 schedule: bool = True, grad_accum: int | None = None, grad_accum_help: str = "") -> type[Section]:
    """A section mixin with AdamW settings (`lr`, `epochs`, `batch_size`, `weight_decay`; with `schedule`
    also `schedule`, `warmup_steps`, `max_grad_norm`; with `grad_accum` a default, `grad_accum`) and their
    conversion to `OptimSpec`."""
    defaults = {"lr": lr, "epochs": epochs, "batch_size": batch_size, "grad_accum": grad_accum}  # the class bodies
    #                                                   below rebind these names, so they read the defaults from here

    class OptimFields(Section):
        lr: float = Field(defaults["lr"], gt=0.0, le=1.0, description=lr_help)
        epochs: int = Field(defaults["epochs"], ge=1, le=1000, description=epochs_help)
        batch_size: int = Field(defaults["batch_size"], ge=1, le=4096, description=batch_help)
        weight_decay: float = Field(0.0, ge=0.0, description="AdamW weight decay.")

        def optim_spec(self) -> OptimSpec:
            return OptimSpec(self.lr, self.epochs, self.batch_size, getattr(self, "schedule", "linear"),
                             getattr(self, "warmup_steps", 0), self.weight_decay,
                             getattr(self, "max_grad_norm", None))

    base = OptimFields
    if schedule:
        class ScheduleFields(base):
            schedule: Literal["linear", "cosine", "constant"] = Field("linear", description="Learning-rate decay.")
            warmup_steps: int = Field(0, ge=0, description="Linear warm-up steps.")
            max_grad_norm: float | None = Field(1.0, gt=0.0, description="Gradient clipping (None: off).")

        base = ScheduleFields
    if grad_accum is None:
        return base

    class AccumFields(base):
        grad_accum: int = Field(defaults["grad_accum"], ge=1, le=4096, description=grad_accum_help)

    return AccumFields


def update_spec(section) -> UpdateSpec:
    """A lasting update's settings (a section with `mode`, LoRA, optimiser and `grad_accum` fields)."""
    lora = section.lora_spec()
    return UpdateSpec(section.mode, LoraSpec(lora.r, lora.alpha, 0.0, lora.target_modules), section.optim_spec(),
                      section.grad_accum)
