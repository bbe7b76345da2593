"""The typed configuration of a run: one dataclass per section.

A pure schema: components own their options (DataOptions, EvolutionOptions, ...) and the
names a key may take. Open sets (models, stems, datasets, strategies, cost metrics, export
formats) are the registries where those are defined (REGISTRY_KEYS, keyed by each registry's own
config key); closed sets are `Literal` types defined beside the code that reads them. Nothing
here copies a name. Every key is documented by the docstring under its field: that text is what
`train_enas.py --help` prints.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, is_dataclass
from typing import Any, Literal

from lightnas.data import DATASETS, DataOptions
from lightnas.export import EXPORT_FORMATS
from lightnas.models import MODELS, STEMS
from lightnas.registry import Registry
from lightnas.runtime.compiling import CompileMode
from lightnas.scoring.cost_metrics import COSTS
from lightnas.scoring.evaluator import RewardBN
from lightnas.scoring.latency import LatencyTableOptions
from lightnas.search.strategies import (
    SAMPLINGS,
    STRATEGIES,
    ControllerOptions,
    EnasOptions,
    EvolutionOptions,
    EvolutionSearchOptions,
)


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
    reward_bn: RewardBN = "recalibrate"
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
    reward_cache_mb: int = 512
    """Memory (on the run's device) for the outputs of each stage of the architectures a
    reward scored, kept until the weights change so that a candidate sharing its first choices
    with one scored before starts where they differ (same numbers; 0 = off)."""
    sampling: Literal[SAMPLINGS] | None = None  # the names' home: SAMPLINGS
    """Architectures each training batch trains: controller (the strategy's sample), uniform,
    or sandwich (largest + smallest + sandwich_k uniform, BigNAS); null = the strategy's rule
    (sandwich for enas, random and evolution; fixed trains its architecture alone and takes
    only null or controller)."""
    sandwich_k: int = 1
    """Uniform architectures per step between the largest and the smallest (sampling sandwich;
    measured: 1 ranks as well as BigNAS's 2 for 3/4 of the work, 0 ranks worse)."""
    sandwich_every: int = 1
    """Only every n-th step is a whole sandwich; the steps between train the sandwich_k uniform
    architectures alone (distilled from the largest's forward without grad). 1 = every step
    (measured: 2 saves a quarter of the quick start's time but ranks worse, tau 0.69 vs 0.77)."""
    inplace_distill: bool | None = None
    """The largest architecture's predictions are the soft targets of the others (BigNAS);
    null = the strategy's rule (on for enas, random and evolution; off for fixed)."""
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
    """The per-op latency table of cost `latency_table` (see lightnas/scoring/latency.py)."""


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
    controller: ControllerOptions = field(default_factory=ControllerOptions)
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
    compile: CompileMode = "none"
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


def strategy_options(cfg: Config) -> Any:
    """The options the configured strategy is built from (`Strategy.from_options`): its own
    sections and keys, never the whole config; None for a strategy that has none (fixed: its
    architecture is resolved against the built supernet's space, lightnas.run.parts)."""
    s = cfg.search
    if s.strategy == "enas":
        return EnasOptions(s.warmup_epochs, cfg.controller)
    if s.strategy == "evolution":
        return EvolutionSearchOptions(s.warmup_epochs, cfg.evolution)
    return None


SECTIONS = tuple(f.name for f in fields(Config) if is_dataclass(getattr(Config(), f.name)))
"""The keys of Config that are sections (mappings of their own keys), in the schema's order."""
# the keys whose valid values are a registry's names (shown in --help and in errors)
REGISTRY_KEYS: dict[str, Registry] = {
    r.key: r for r in (MODELS, STEMS, DATASETS, STRATEGIES, COSTS, EXPORT_FORMATS)
}
