"""Typed experiment configuration: dataclasses loadable from ``conf/*.yaml``, overridable on
the command line with ``--set section.key=value``.

Unknown keys are errors that name the file (or the override) and list the valid keys: a
typo must never silently create a new setting.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Sequence, Tuple

import yaml

from distill.losses.lattice_kd import KdConfig
from distill.models.config import LossConfig, ModelConfig
from distill.train.precision import PRECISIONS
from distill.utils.dataclass_dict import set_field


@dataclass
class DataConfig:
    """What the training data is and how it is batched.

    Attributes:
      train_cuts / valid_cuts: cut manifests with precomputed features (stage 2).
      lang_dir: the lang dir (stage 3) holding ``bpe.model``.
      max_duration: seconds of audio per batch (lhotse's DynamicBucketingSampler).
      num_buckets: duration buckets of the sampler.
      min_cut_duration / max_cut_duration: cuts outside are dropped (logged).
      spec_augment: apply SpecAugment to training batches.
      spec_augment_start: the batch from which SpecAugment and frequency warping apply (0:
        from the first). Masking makes the first, "blank only" phase of transducer training
        longer (README); starting it after the CTC warm-up keeps that phase short and still
        regularizes.
      freq_warp: largest relative frequency change of the per-utterance frequency warping of
        the features (VTLP, distill/train/augment.py), e.g. 0.1 for factors in [0.9, 1.1];
        0 turns it off. It makes each training voice sound like many, for unseen voices.
      speed_perturbed: train on stage 2's speed-perturbed copies too (lhotse names them
        ``<id>_sp0.9``/``<id>_sp1.1``); False keeps the original training cuts only, an epoch
        a third as long (the demo main job trains its students so: README).
      num_workers: DataLoader workers.
    """

    train_cuts: str = ""
    valid_cuts: str = ""
    lang_dir: str = ""
    max_duration: float = 200.0
    num_buckets: int = 10
    min_cut_duration: float = 0.5
    max_cut_duration: float = 20.0
    spec_augment: bool = True
    spec_augment_start: int = 0
    freq_warp: float = 0.0
    speed_perturbed: bool = True
    num_workers: int = 0

    def __post_init__(self) -> None:
        if not 0.0 <= self.freq_warp < 0.5:
            raise ValueError(f"data.freq_warp must lie in [0, 0.5), got {self.freq_warp}")


@dataclass
class OptimConfig:
    """AdamW with a linear warm-up then icefall's "Eden" decay (see distill/train/schedule.py).

    Attributes:
      base_lr: the peak learning rate.
      weight_decay: AdamW's decoupled weight decay.
      warmup_batches: linear warm-up from 0 to ``base_lr``.
      lr_batches / lr_epochs: Eden's decay constants (in batches and in epochs).
      clip_grad_norm: gradient clipping by global norm.
    """

    base_lr: float = 2e-3
    weight_decay: float = 1e-3
    warmup_batches: int = 300
    lr_batches: int = 3000
    lr_epochs: float = 6.0
    clip_grad_norm: float = 5.0


@dataclass
class TrainLoopConfig:
    """The training loop.

    Attributes:
      exp_dir: where checkpoints, logs and tensorboard go.
      num_epochs: epochs to train.
      seed: random seed (model init, sampler shuffling).
      log_interval: batches between log lines.
      save_every_n: batches between batch checkpoints (0: only per epoch).
      keep_last_k: batch checkpoints kept.
      average_period: batches between the snapshots of the running average of the weights that
        checkpoints keep for ``--use-averaged-model`` (icefall's ``model_avg``,
        distill/train/running_average.py); 0 keeps none.
      max_nonfinite_in_a_row: stop with an error after this many non-finite losses in a row.
      device: "auto" (CUDA when present), "cpu" or "cuda".
      precision: "float32", "bfloat16" (autocast) or "auto" (bfloat16 where the hardware
        computes it natively: a CPU with AMX, a CUDA device that supports it; float32
        elsewhere); see distill/train/precision.py.
    """

    exp_dir: str = "exp/teacher"
    num_epochs: int = 10
    seed: int = 42
    log_interval: int = 20
    save_every_n: int = 200
    keep_last_k: int = 3
    average_period: int = 0
    max_nonfinite_in_a_row: int = 20
    device: str = "auto"
    precision: str = "float32"

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ValueError(f"train.precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if self.average_period < 0:
            raise ValueError(f"train.average_period must be >= 0 (0: no running average), got {self.average_period}")


@dataclass
class ExperimentConfig:
    """The whole experiment: model, loss, distillation, data, optimizer and loop."""

    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    kd: KdConfig = field(default_factory=KdConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainLoopConfig = field(default_factory=TrainLoopConfig)

    def to_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, raw: Dict[str, Any], source: str = "<dict>") -> "ExperimentConfig":
        """Build from a nested dict, refusing unknown sections and keys (naming ``source``)."""
        config = cls()
        config.update(raw, source)
        return config

    def update(self, raw: Dict[str, Any], source: str) -> None:
        sections = {f.name for f in dataclasses.fields(self)}
        for section, values in (raw or {}).items():
            if section not in sections:
                raise ValueError(f"{source}: unknown section '{section}' (valid: {', '.join(sorted(sections))})")
            if not isinstance(values, dict):
                raise ValueError(f"{source}: section '{section}' must be a mapping")
            target = getattr(self, section)
            for key, value in values.items():
                set_field(target, key, value, f"{source}: {section}")
            try:
                # replace() re-runs the section's __post_init__ checks on the new values.
                setattr(self, section, dataclasses.replace(target))
            except ValueError as err:
                raise ValueError(f"{source}: {section}: {err}") from err


#: The file of a recipe's conf dir that every model's config is layered on.
COMMON_CONFIG_NAME = "common.yaml"


def recipe_config_files(conf_dir: Path, name: str) -> List[Path]:
    """The layers of model ``name`` (e.g. ``teacher``) of a recipe's conf dir, in order:
    ``common.yaml`` when the dir has one, then ``<name>.yaml`` (as ``local/asr.sh`` passes them)."""
    conf_dir = Path(conf_dir)
    common = conf_dir / COMMON_CONFIG_NAME
    return ([common] if common.is_file() else []) + [conf_dir / f"{name}.yaml"]


#: The parts of an overlay file (a recipe's ``conf/demo.yaml``): ``recipe`` holds ``local/asr.sh``
#: options, ``teacher`` the layer over the teacher's config, ``students`` over every student's.
OVERLAY_SECTIONS = ("recipe", "teacher", "students")


def read_overlay_section(path: Path, section: str) -> Dict[str, Any]:
    """One part of an overlay file (see ``OVERLAY_SECTIONS``): a mapping, empty when the file
    leaves that part out. A misspelt part is an error that names the file, as a key is."""
    path = Path(path)
    if section not in OVERLAY_SECTIONS:
        raise ValueError(f"overlay section must be one of {', '.join(OVERLAY_SECTIONS)}, got {section!r}")
    if not path.is_file():
        raise FileNotFoundError(f"Overlay file {path} does not exist")
    raw = yaml.safe_load(path.read_text()) or {}
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: an overlay is a mapping of {', '.join(OVERLAY_SECTIONS)}")
    unknown = sorted(set(raw) - set(OVERLAY_SECTIONS))
    if unknown:
        raise ValueError(f"{path}: unknown overlay section(s) {', '.join(map(repr, unknown))} "
                         f"(valid: {', '.join(OVERLAY_SECTIONS)})")
    values = raw.get(section) or {}
    if not isinstance(values, dict):
        raise ValueError(f"{path}: overlay section '{section}' must be a mapping")
    return values


def load_config(yaml_files: Sequence[Path] = (), overrides: Sequence[str] = (),
                overlays: Sequence[Tuple[Path, str]] = ()) -> ExperimentConfig:
    """Defaults, then each YAML file in order, then each overlay's section, then
    ``section.key=value`` overrides.

    Args:
      yaml_files:
        Config files (later ones override earlier ones).
      overrides:
        Strings like ``"model.encoder_dim=144"``.
      overlays:
        ``(file, section)`` pairs: that section of an overlay file (e.g. ``conf/demo.yaml``,
        ``teacher``) is one more layer, after the files and before the overrides.
    """
    config = ExperimentConfig()
    for path in yaml_files:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"Config file {path} does not exist")
        with open(path) as f:
            config.update(yaml.safe_load(f) or {}, str(path))
    for path, section in overlays:
        config.update(read_overlay_section(path, section), f"{path} ({section})")
    for item in overrides:
        if "=" not in item or "." not in item.split("=", 1)[0]:
            raise ValueError(f"--set {item!r}: expected section.key=value")
        dotted, value = item.split("=", 1)
        section, key = dotted.split(".", 1)
        config.update({section: {key: yaml.safe_load(value)}}, f"--set {item}")
    return config


def config_yaml(config: ExperimentConfig) -> str:
    """The resolved config as YAML, in the dataclasses' order (what a run logs and stores)."""
    return yaml.safe_dump(config.to_dict(), sort_keys=False)


def save_config(config: ExperimentConfig, path: Path) -> str:
    """Write the resolved config as YAML (atomically); returns the YAML written."""
    from distill.utils.io import atomic_write_text

    text = config_yaml(config)
    atomic_write_text(path, text)
    return text


