"""The typed search configuration: YAML file + command-line overrides via jsonargparse.

Valid names (models, stems, datasets, strategies, cost metrics, export formats) come from the
registries where those are defined; nothing here copies them. Every key is documented by the
docstring under its field: that text is what `train_enas.py --help` prints.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import math
import re
import sys
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, Literal

import torch
import yaml
from jsonargparse import ActionConfigFile, ArgumentParser, Namespace, set_parsing_settings

from lightnas.compiling import COMPILE_MODES
from lightnas.cost import COSTS
from lightnas.data import DATASETS, DataOptions
from lightnas.errors import ConfigError
from lightnas.evaluation import REWARD_BN
from lightnas.export import EXPORT_FORMATS
from lightnas.graphs import RENDER_FORMATS
from lightnas.latency import LatencyTableOptions, check_options
from lightnas.models import MODELS, STEMS
from lightnas.models.graph import MODEL as GRAPH_MODEL
from lightnas.models.graph import check_space_file
from lightnas.registry import Registry
from lightnas.sampling import SAMPLINGS
from lightnas.search.strategies import STRATEGIES, EvolutionOptions

# --help shows each field's docstring
set_parsing_settings(docstring_parse_attribute_docstrings=True)


@dataclass
class ModelConfig:
    """The supernet."""

    name: str = "meliusnet22"
    """Supernet name."""
    stem: str = "thumbnail"
    """Full-precision stem: imagenet (7x7/2 + max-pool) or thumbnail (3x3/1, for 32x32)."""
    kwargs: dict = field(default_factory=dict)
    """Overrides of the family's spec, e.g. {growth_rate: 32, block_config: [2, 2, 2, 2]}."""
    file: str | None = None
    """Space file of model `graph` (e.g. configs/spaces/meliusnet22.yml, see docs/spaces.md):
    the supernet as a graph of layers and blocks with choice nodes; null for the other models."""


@dataclass
class OptimConfig:
    """The supernet's optimizer and learning-rate schedule."""

    optimizer: Literal["sgd", "adam"] = "adam"
    """sgd (Nesterov momentum) or adam."""
    lr: float = 2e-3
    """Peak learning rate of the cosine schedule."""
    momentum: float = 0.9
    """SGD momentum."""
    weight_decay: float = 0.0
    """L2 on conv / linear weights (never on BatchNorm, biases or latent binary weights)."""
    grad_clip: float | None = None
    """Clip the gradient norm to this value; null = no clipping."""
    min_lr: float = 0.0
    """Cosine schedule floor."""


@dataclass
class ControllerConfig:
    """The ENAS controller (an LSTM trained with REINFORCE)."""

    hidden_size: int = 64
    """LSTM hidden size."""
    temperature: float | None = 5.0
    """Logits are divided by this; null = 1."""
    tanh_constant: float | None = 2.5
    """Logits become tanh_constant * tanh(logits); null = no squashing."""
    entropy_weight: float = 1e-4
    """Weight of the entropy bonus in the REINFORCE loss."""
    baseline_decay: float = 0.95
    """Decay of the reward's moving-average baseline, in [0, 1)."""
    lr: float = 3.5e-4
    """The controller's Adam learning rate."""
    grad_clip: float | None = None
    """Clip the controller's gradient norm; null = no clipping."""


@dataclass
class SearchConfig:
    """The search: strategy, reward and validation."""

    strategy: str = "enas"
    """How architectures are proposed."""
    warmup_epochs: int = 0
    """Epochs of uniformly random architectures before the controller starts."""
    update_arch_frequency: int | None = None
    """Run a controller phase every N training batches; null = once per epoch."""
    controller_steps: int = 50
    """Controller steps (sample, reward, update) per controller phase."""
    controller_batch: int = 1
    """Architectures sampled per controller step."""
    reward_batches: int | None = None
    """Validation batches per reward (every candidate of a step sees the same); null = all
    (measured: one 64-image batch's noise exceeded the spread between architectures)."""
    reward_bn: str = "recalibrate"
    """BatchNorm of a reward: recalibrate (statistics re-estimated for the architecture on
    training batches, then eval mode: the protocol of validation) or batch (each reward batch's
    own statistics, ENAS's original)."""
    num_val_samples: int = 10
    """Candidates ranked on reward batches at each validation; the best is validated fully."""
    bn_recalibration_batches: int = 10
    """Training batches that re-estimate BatchNorm statistics for an architecture before a
    reward or a validation (0 = none, e.g. to train one fixed architecture)."""
    reward_calibration_batches: int | None = 1
    """Training batches that re-estimate BatchNorm for a reward; null = bn_recalibration_batches
    (few keep rewards cheap: each candidate of each step is re-estimated; 1 measured as well as
    4)."""
    sampling: str = "sandwich"
    """Architectures each training batch trains: controller (the strategy's sample), uniform,
    or sandwich (largest + smallest + sandwich_k uniform, BigNAS)."""
    sandwich_k: int = 2
    """Uniform architectures per step between the largest and the smallest (sampling sandwich)."""
    inplace_distill: bool = True
    """The largest architecture's predictions are the soft targets of the others (BigNAS)."""
    final_top_k: int = 5
    """After the last epoch, re-score the k best distinct validated architectures with the
    final weights and pick the winner (0 = keep the last epoch's)."""
    cost: str = "ops"
    """Cost metric of the reward."""
    cost_weight: float = 0.0
    """w <= 0 in reward = accuracy * (cost / target_cost) ** w; 0 = accuracy only."""
    target_cost: float | None = None
    """null = the cost of the base network (first choice everywhere)."""
    cost_budget: float | None = None
    """Hard budget (MnasNet): a costlier architecture's reward is multiplied by budget / cost."""
    architecture: str | None = None
    """JSON file of the architecture to train with strategy `fixed`."""
    latency_table: LatencyTableOptions = field(default_factory=LatencyTableOptions)
    """The per-op latency table of cost `latency_table` (see lightnas/latency.py)."""


@dataclass
class ExportConfig:
    """What each exported epoch writes."""

    formats: list[str] = field(default_factory=lambda: ["pt2", "onnx"])
    """Inference formats written beside the trainable safetensors."""
    every: int = 1
    """Export every N epochs (and always the last); 0 = only the last."""
    graph_formats: list[str] = field(default_factory=lambda: ["png"])
    """Rendered architecture graphs (need Graphviz's `dot`; .dot files are always written)."""


@dataclass
class DistillConfig:
    """Knowledge distillation from a full-precision teacher."""

    teacher: str | None = None
    """Full-precision teacher: an exported trainable (.safetensors/.json), a training folder (its
    latest export) or a model name (its base network at 32 bits, weights from `weights`)."""
    weights: str | None = None
    """safetensors state dict of a named teacher."""
    kwargs: dict = field(default_factory=dict)
    """Spec overrides of a named teacher, as model.kwargs."""
    alpha: float = 0.9
    """loss = (1 - alpha) * CE + alpha * T^2 * KL(teacher || student)."""
    temperature: float = 4.0
    """Softmax temperature T of the soft targets."""


@dataclass
class CheckpointConfig:
    """When the search state is saved (enas_checkpoint/)."""

    every_minutes: float = 10.0
    """Also save inside an epoch every N minutes of training (0 = after every batch); the end of
    every epoch always saves."""


@dataclass
class TrackingConfig:
    """Experiment trackers beside TensorBoard (optional extras)."""

    mlflow: str | None = None
    """MLflow tracking URI (sqlite:///mlflow.db, file:./mlruns, http://host:5000): log params,
    per-epoch metrics and the exports there; null = off. Needs `pip install lightnas[mlflow]`."""
    experiment: str = "lightnas"
    """MLflow experiment of the run (a sweep's trials default to the sweep's name)."""


@dataclass
class DistributedConfig:
    """Runs started by torchrun on several processes (see "Several GPUs and machines" in the
    README); ignored by a single process."""

    sync_bn: bool = False
    """BatchNorm of the training step on the statistics of the global batch (SyncBatchNorm;
    CUDA only): worth it when data.batch_size per GPU is small."""


@dataclass
class Config:
    """A LightNAS run."""

    imports: list[str] = field(default_factory=list)
    """Python modules (names or .py files) imported first: they register your own datasets,
    search ops, cost metrics or models (see "Extending LightNAS" in the README)."""
    model: ModelConfig = field(default_factory=ModelConfig)
    """The supernet."""
    search_space: dict | None = None
    """Choices per decision-point kind, e.g. {dense_block: [conv3x3, conv1x1]}; null = all."""
    data: DataOptions = field(default_factory=DataOptions)
    """The dataset and its loaders."""
    optim: OptimConfig = field(default_factory=OptimConfig)
    """The supernet's optimizer."""
    controller: ControllerConfig = field(default_factory=ControllerConfig)
    """The ENAS controller."""
    evolution: EvolutionOptions = field(default_factory=EvolutionOptions)
    """The evolution strategy."""
    search: SearchConfig = field(default_factory=SearchConfig)
    """The search."""
    export: ExportConfig = field(default_factory=ExportConfig)
    """Exports."""
    distill: DistillConfig = field(default_factory=DistillConfig)
    """Distillation."""
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    """Checkpoints."""
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    """Experiment tracking."""
    distributed: DistributedConfig = field(default_factory=DistributedConfig)
    """Several processes (torchrun)."""
    epochs: int = 10
    """Epochs of the run."""
    seed: int = 0
    """Seed of every random number the run draws."""
    device: str = "auto"
    """auto (cuda when available), cpu, cuda, cuda:N."""
    channels_last: bool = False
    """channels_last memory format (faster convolutions on recent GPUs)."""
    bf16: bool = False
    """bf16 autocast for the supernet on CUDA."""
    compile: str = "none"
    """torch.compile: none, regional (every binary conv once per shape: survives a new
    architecture each step) or full (the whole supernet: for fixed retrains)."""
    compile_backend: str = "inductor"
    """torch.compile backend (inductor; aot_eager compiles without generating code)."""
    name: str | None = None
    """Training folder name; default <model>_<YYYY_MM_DD_HH_MM>."""
    output_dir: str = "trainings"
    """Folder holding the training folders."""
    progress: bool = True
    """Progress bars on a terminal."""

    def to_dict(self) -> dict:
        return asdict(self)


SECTIONS = (
    "model",
    "data",
    "optim",
    "controller",
    "evolution",
    "search",
    "export",
    "distill",
    "checkpoint",
    "tracking",
    "distributed",
)
# the keys whose valid values are a registry's names (shown in --help and in errors)
REGISTRY_KEYS: dict[str, Registry] = {
    "model.name": MODELS,
    "model.stem": STEMS,
    "data.dataset": DATASETS,
    "search.strategy": STRATEGIES,
    "search.cost": COSTS,
    "export.formats": EXPORT_FORMATS,
}


class ArgParser(argparse.ArgumentParser):
    """argparse whose errors are one-line ConfigErrors (exit 2 in the caller)."""

    def error(self, message: str):
        raise ConfigError(f"{self.prog}: {message}")


def check_device_name(name: str) -> None:
    """auto, cpu, cuda, cuda:N or mps; anything else is a ConfigError."""
    if re.fullmatch(r"auto|cpu|cuda(:\d+)?|mps", name) is None:
        raise ConfigError(f"device={name!r} is not valid; valid: auto, cpu, cuda, cuda:N")


def resolve_device(name: str) -> torch.device:
    """`auto` = CUDA when available; a CUDA device where there is none is a ConfigError."""
    check_device_name(name)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device={name!r} but CUDA is not available; valid here: auto, cpu")
    return device


# ---- parsing ---------------------------------------------------------------------------------
def build_parser(prog: str = "train_enas.py") -> ArgumentParser:
    parser = ArgumentParser(
        prog=prog,
        exit_on_error=False,
        description="ENAS search for binary neural networks. Any key can be overridden, "
        "e.g. --search.warmup_epochs 2 --data.batch_size 64.",
    )
    parser.add_argument("-c", "--config", action=ActionConfigFile, help="YAML config file")
    parser.add_argument(
        "--resume", type=str | None, default=None, help="trainings/<name> to resume"
    )
    parser.add_argument(
        "--force", type=bool, default=False, help="resume despite a config mismatch"
    )
    parser.add_class_arguments(Config, fail_untyped=False)
    for action in parser._actions:
        registry = REGISTRY_KEYS.get(action.dest)
        if registry is not None:
            action.help = f"{action.help or ''} Valid: {registry.valid()}.".strip()
    return parser


def _one_line(err: Exception) -> str:
    text = " ".join(str(err).split())
    text = re.sub(r"typing\.Literal\[(.*?)\]", r"one of [\1]", text)
    text = re.sub(r"<class '(\w+)'>", r"\1", text)
    text = text.replace("Expected a ", "expected ").replace("Got value:", "got")
    text = text.replace('Parser key "', 'config key "')
    # jsonargparse refuses nan and inf as floats with a message that hides why
    infinite = re.search(r'config key "([\w.]+)".*got (-?(?:nan|inf))\b', text, re.IGNORECASE)
    if infinite:
        return f"{infinite[1]}={infinite[2]} must be a finite number"
    return text


def config_files(argv: list[str]) -> Iterator[str]:
    """The values of every -c / --config in `argv`."""
    for i, arg in enumerate(argv):
        if arg in ("-c", "--config") and i + 1 < len(argv):
            yield argv[i + 1]
        elif arg.startswith("--config="):
            yield arg.split("=", 1)[1]


def check_config_file(path: str) -> None:
    """A config file must exist and hold a YAML mapping of keys."""
    file = Path(path)
    if file.is_dir():
        raise ConfigError(f"config file {path} is a folder; give a YAML file")
    if not file.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        data = yaml.safe_load(file.read_text())
    except yaml.YAMLError as err:
        raise ConfigError(f"config file {path} is not valid YAML: {_one_line(err)}") from None
    if data is None:
        raise ConfigError(f"config file {path} is empty; it must hold keys such as `epochs: 10`")
    if not isinstance(data, dict):
        raise ConfigError(
            f"config file {path} holds a {type(data).__name__}, not a mapping of keys such as "
            "`epochs: 10`"
        )


def parse_config(argv: list[str] | None = None) -> tuple[Config, Namespace, ArgumentParser]:
    """Parse a YAML file and overrides into a Config; raises ConfigError (one line) when bad."""
    for path in config_files(list(argv or [])):
        check_config_file(path)
    parser = build_parser()
    try:
        ns = parser.parse_args(argv)
        init = getattr(parser, "instantiate", None) or parser.instantiate_classes
        init = init(ns)
    except Exception as err:  # jsonargparse raises ArgumentError/TypeError with multi-line text
        raise ConfigError(_one_line(err)) from None
    cfg = Config(**{k: getattr(init, k) for k in Config.__dataclass_fields__})
    import_extensions(cfg.imports)
    validate(cfg)
    return cfg, ns, parser


def import_extensions(modules: list[str]) -> None:
    """Import the user's extension modules (a dotted name, or a path to a .py file)."""
    for name in modules:
        try:
            if name.endswith(".py"):
                path = Path(name).resolve()
                if not path.is_file():
                    raise ConfigError(f"imports: {name} does not exist")
                load_module_file(path)
            else:
                importlib.import_module(name)
        except ModuleNotFoundError as err:
            raise ConfigError(f"imports: no module named {err.name!r} (importing {name})") from None


def load_module_file(path: Path) -> None:
    """Run a .py file once as the module named after it (imported again: nothing happens)."""
    name = f"lightnas_ext_{path.stem}_{abs(hash(str(path)))}"
    if name in sys.modules:
        return
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)


# ---- validation ------------------------------------------------------------------------------
def _known(key: str, value: str) -> tuple[bool, str]:
    registry = REGISTRY_KEYS[key]
    return value in registry, f"{key}={value!r} is not known; valid: {registry.valid()}"


def _all_known(key: str, values: list[str], valid) -> tuple[bool, str]:
    bad = [v for v in values if v not in valid] or [""]
    names = valid.valid() if isinstance(valid, Registry) else ", ".join(valid)
    return bad == [""], f"{key}: {bad[0]!r} is not known; valid: {names}"


def _floats(obj: Any, prefix: str = "") -> Iterator[tuple[str, float]]:
    """(dotted key, value) of every float in a config."""
    for f in fields(obj):
        value = getattr(obj, f.name)
        if is_dataclass(value):
            yield from _floats(value, f"{prefix}{f.name}.")
        elif isinstance(value, float):
            yield f"{prefix}{f.name}", value


def _one_of(key: str, value: str, valid: tuple[str, ...]) -> tuple[bool, str]:
    return value in valid, f"{key}={value!r} is not valid; valid: {', '.join(valid)}"


def _optional_positive(key: str, value: float | None) -> tuple[bool, str]:
    return value is None or value > 0, f"{key}={value} must be > 0 or null"


def check_model_file(model: ModelConfig) -> None:
    """model.file goes with model.name graph (and only with it), and must be a usable space."""
    if model.name != GRAPH_MODEL:
        if model.file is not None:
            raise ConfigError(
                f"model.file is read by model.name=graph only (got model.name={model.name!r}): "
                "set model.name: graph, or remove model.file"
            )
        return
    if model.file is None:
        raise ConfigError(
            "model.name=graph needs model.file: a space file, e.g. configs/spaces/meliusnet22.yml"
        )
    check_space_file(model.file, stem=model.stem, params=model.kwargs.get("params"))


def validate(cfg: Config) -> None:
    """Checks that need more than types; every message names the key and the valid values."""
    s, c = cfg.search, cfg.controller
    name_ok = cfg.name is None or (
        cfg.name not in ("", ".", "..") and "/" not in cfg.name and "\\" not in cfg.name
    )
    checks = [(math.isfinite(v), f"{k}={v} must be a finite number") for k, v in _floats(cfg)]
    checks += [
        _known("model.name", cfg.model.name),
        _known("model.stem", cfg.model.stem),
        _known("data.dataset", cfg.data.dataset),
        _known("search.strategy", s.strategy),
        _known("search.cost", s.cost),
        _all_known("export.formats", cfg.export.formats, EXPORT_FORMATS),
        _all_known("export.graph_formats", cfg.export.graph_formats, RENDER_FORMATS),
        (cfg.epochs >= 1, f"epochs={cfg.epochs} must be >= 1"),
        (name_ok, f"name={cfg.name!r} must be a plain folder name (no '/', not '..')"),
        (s.cost_weight <= 0, f"search.cost_weight={s.cost_weight} must be <= 0"),
        _optional_positive("search.target_cost", s.target_cost),
        (s.controller_steps >= 0, f"search.controller_steps={s.controller_steps} must be >= 0"),
        (s.controller_batch >= 1, f"search.controller_batch={s.controller_batch} must be >= 1"),
        (
            s.reward_batches is None or s.reward_batches >= 1,
            f"search.reward_batches={s.reward_batches} must be >= 1 or null (all)",
        ),
        _one_of("search.reward_bn", s.reward_bn, REWARD_BN),
        (
            s.reward_calibration_batches is None or s.reward_calibration_batches >= 1,
            f"search.reward_calibration_batches={s.reward_calibration_batches} must be >= 1 "
            "or null",
        ),
        _one_of("search.sampling", s.sampling, SAMPLINGS),
        _one_of("compile", cfg.compile, COMPILE_MODES),
        (s.sandwich_k >= 0, f"search.sandwich_k={s.sandwich_k} must be >= 0"),
        (s.final_top_k >= 0, f"search.final_top_k={s.final_top_k} must be >= 0"),
        _optional_positive("search.cost_budget", s.cost_budget),
        (s.num_val_samples >= 0, f"search.num_val_samples={s.num_val_samples} must be >= 0"),
        (s.warmup_epochs >= 0, f"search.warmup_epochs={s.warmup_epochs} must be >= 0"),
        (
            s.bn_recalibration_batches >= 0,
            f"search.bn_recalibration_batches={s.bn_recalibration_batches} must be >= 0",
        ),
        (
            s.update_arch_frequency is None or s.update_arch_frequency >= 1,
            "search.update_arch_frequency must be >= 1 or null (once per epoch)",
        ),
        (c.hidden_size >= 1, f"controller.hidden_size={c.hidden_size} must be >= 1"),
        _optional_positive("controller.temperature", c.temperature),
        _optional_positive("controller.tanh_constant", c.tanh_constant),
        (c.lr > 0, f"controller.lr={c.lr} must be > 0"),
        (c.entropy_weight >= 0, f"controller.entropy_weight={c.entropy_weight} must be >= 0"),
        (
            0 <= c.baseline_decay < 1,
            f"controller.baseline_decay={c.baseline_decay} must be in [0, 1)",
        ),
        _optional_positive("controller.grad_clip", c.grad_clip),
        (cfg.optim.lr > 0, f"optim.lr={cfg.optim.lr} must be > 0"),
        (cfg.optim.min_lr >= 0, f"optim.min_lr={cfg.optim.min_lr} must be >= 0"),
        (cfg.optim.weight_decay >= 0, f"optim.weight_decay={cfg.optim.weight_decay} must be >= 0"),
        (cfg.optim.momentum >= 0, f"optim.momentum={cfg.optim.momentum} must be >= 0"),
        _optional_positive("optim.grad_clip", cfg.optim.grad_clip),
        (cfg.export.every >= 0, f"export.every={cfg.export.every} must be >= 0"),
        (
            cfg.checkpoint.every_minutes >= 0,
            f"checkpoint.every_minutes={cfg.checkpoint.every_minutes} must be >= 0",
        ),
        (0 <= cfg.distill.alpha <= 1, f"distill.alpha={cfg.distill.alpha} must be in [0, 1]"),
        (cfg.distill.temperature > 0, "distill.temperature must be > 0"),
        (cfg.tracking.mlflow != "", "tracking.mlflow must be a tracking URI or null (off)"),
        (
            cfg.distill.teacher is None
            or cfg.distill.teacher in MODELS
            or any(Path(cfg.distill.teacher + s).exists() for s in ("", ".safetensors")),
            f"distill.teacher={cfg.distill.teacher!r} is neither a file or folder nor a model "
            f"name; valid models: {MODELS.valid()}",
        ),
    ]
    for ok, message in checks:
        if not ok:
            raise ConfigError(message)
    check_model_file(cfg.model)
    check_device_name(cfg.device)
    cfg.data.check()
    STRATEGIES[s.strategy].check_config(cfg)
    check_options(cfg.search.latency_table)
