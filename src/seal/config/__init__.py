"""Typed run configuration: YAML file + `--set a.b=c` overrides, validated before any model loads.

Every key has a type, a default, bounds and a help line; `docs/config.md` is generated from these models
(`seal config-docs`), so the reference cannot drift from the code.

    fields.py     the base section; LoRA and optimiser fields declared once; `resume_safe`
    sections.py   one model per concern (model, data, generation, inner, grader, restem, eval, arc, ...)
    load.py       YAML + overrides, errors with did-you-mean, the reference, resume checks
"""

from seal.config.load import (apply_overrides, changed_keys, config_reference, dump_config, load_config,
                              resume_safe_keys, validate)
from seal.config.sections import (ArcConfig, ConfigError, ContinualConfig, CPTConfig, DataConfig, EndpointConfig,
                                  EvalConfig, GenerationConfig, GraderConfig, InnerConfig, JudgeConfig, LogConfig,
                                  ModelConfig, QuestionsConfig, RayConfig, RestEMConfig, RunConfig, SequencesConfig,
                                  SFTConfig, SourceConfig, TeacherConfig, UpdateConfig)

__all__ = ["ArcConfig", "ConfigError", "ContinualConfig", "CPTConfig", "DataConfig", "EndpointConfig", "EvalConfig",
           "GenerationConfig", "GraderConfig", "InnerConfig", "JudgeConfig", "LogConfig", "ModelConfig",
           "QuestionsConfig", "RayConfig", "RestEMConfig", "RunConfig", "SequencesConfig", "SFTConfig", "SourceConfig",
           "TeacherConfig", "UpdateConfig", "apply_overrides", "changed_keys", "config_reference", "dump_config",
           "load_config", "resume_safe_keys", "validate"]
