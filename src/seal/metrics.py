"""Metrics of a run through one small interface, with optional TensorBoard and Weights & Biases sinks.

    metrics = Metrics.open(cfg.log, run_dir, cfg)     # no sinks configured: every call is a no-op
    metrics.scalars({"round/mean_reward": 0.41}, step=1)
    metrics.close()

The run layer owns one per run and logs round rewards, inner-loop losses and timings, and the table rows.
`log.sinks: [tensorboard]` writes event files under `log.dir` (default `<run dir>/logs`);
`log.sinks: [wandb]` logs to a W&B run named after the run directory (`log.wandb_mode: offline` keeps it on
disk). The libraries are optional (`pip install 'seal[logging]'`); a configured sink whose library is missing
is an error when the run opens, not halfway through.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from seal.config import ConfigError, LogConfig


class Sink(Protocol):
    def scalars(self, values: dict[str, float], step: int) -> None: ...

    def close(self) -> None: ...


class TensorBoardSink:
    def __init__(self, log_dir: Path):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise ConfigError("log.sinks has 'tensorboard' but it is not installed: pip install tensorboard") from None
        self.writer = SummaryWriter(log_dir=str(log_dir))

    def scalars(self, values: dict[str, float], step: int) -> None:
        for tag, value in values.items():
            self.writer.add_scalar(tag, value, step)

    def close(self) -> None:
        self.writer.close()


class WandbSink:
    def __init__(self, cfg: LogConfig, log_dir: Path, name: str, config: dict):
        try:
            import wandb
        except ImportError:
            raise ConfigError("log.sinks has 'wandb' but it is not installed: pip install wandb") from None
        log_dir.mkdir(parents=True, exist_ok=True)
        self.run = wandb.init(project=cfg.wandb_project, name=name, dir=str(log_dir), mode=cfg.wandb_mode,
                              config=config, reinit="create_new")

    def scalars(self, values: dict[str, float], step: int) -> None:
        self.run.log(dict(values), step=step)

    def close(self) -> None:
        self.run.finish()


class Metrics:
    """Scalars by tag and step, sent to every sink (none by default)."""

    def __init__(self, sinks: list[Sink] | None = None):
        self.sinks = sinks or []
        self._steps: dict[str, int] = {}

    @classmethod
    def open(cls, cfg: LogConfig, run_dir: Path, run_config: dict | None = None) -> "Metrics":
        log_dir = Path(cfg.dir) if cfg.dir else Path(run_dir) / "logs"
        sinks: list[Sink] = []
        for name in cfg.sinks:
            if name == "tensorboard":
                sinks.append(TensorBoardSink(log_dir / "tensorboard"))
            elif name == "wandb":
                sinks.append(WandbSink(cfg, log_dir, Path(run_dir).name, run_config or {}))
        return cls(sinks)

    def scalars(self, values: dict[str, float], step: int | None = None) -> None:
        """Log `values` at `step` (default: one more than the last step of the first tag)."""
        if not self.sinks or not values:
            return
        if step is None:
            step = self._steps.get(next(iter(values)), -1) + 1
        for tag in values:
            self._steps[tag] = step
        for sink in self.sinks:
            sink.scalars(values, step)

    def close(self) -> None:
        for sink in self.sinks:
            sink.close()
        self.sinks = []
