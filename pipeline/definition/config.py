"""The pipeline's typed configuration: every knob of every part, flat, under its one name.

Each field is declared by the part that uses it (`same_knob`), with its default and help there;
the CLI's `run` options, the pipeline's signature and the components' inputs use the same names.
Building a `PipelineConfig` builds and so validates every part before any step runs, so a bad value
fails at once with its name, not twenty minutes into a run.
"""

import dataclasses
from dataclasses import dataclass

from components.common.config.base_network_spec import BaseNetworkSpec
from components.common.config.head_config import HeadConfig
from components.common.config.knobs import knob_fields, same_knob
from components.common.config.run_settings import RunSettings
from components.common.config.view_policy import ViewPolicy
from components.evaluate.blessing import BlessingPolicy
from components.fine_tune.config import FineTuneConfig
from components.preprocess.splits import SplitPolicy

# The typed configs the pipeline's knobs belong to. A knob two parts share (batch_size, seed) is
# declared by the first and read by the other.
PARTS = (RunSettings, BaseNetworkSpec, SplitPolicy, HeadConfig, ViewPolicy, FineTuneConfig, BlessingPolicy)


@dataclass(frozen=True)
class PipelineConfig:
    """Every parameter of the pipeline; see each part for what a knob does."""

    source: str = same_knob(RunSettings, "source")
    exclude: str = same_knob(RunSettings, "exclude")
    relabel: str = same_knob(RunSettings, "relabel")
    base_model: str = same_knob(BaseNetworkSpec, "base_model")
    base_weights: str = same_knob(BaseNetworkSpec, "base_weights")
    alpha: float = same_knob(BaseNetworkSpec, "alpha")
    image_size: int = same_knob(BaseNetworkSpec, "image_size")
    pooling: str = same_knob(BaseNetworkSpec, "pooling")
    trust_base_model: bool = same_knob(BaseNetworkSpec, "trust_base_model")
    train_fraction: float = same_knob(SplitPolicy, "train_fraction")
    eval_fraction: float = same_knob(SplitPolicy, "eval_fraction")
    beam_args: tuple[str, ...] = same_knob(RunSettings, "beam_args")
    compact_examples: bool = same_knob(RunSettings, "compact_examples")
    hidden_units: tuple[int, ...] = same_knob(HeadConfig, "hidden_units")
    dropout: float = same_knob(HeadConfig, "dropout")
    learning_rate: float = same_knob(HeadConfig, "learning_rate")
    epochs: int = same_knob(HeadConfig, "epochs")
    batch_size: int = same_knob(HeadConfig, "batch_size")
    patience: int = same_knob(HeadConfig, "patience")
    seed: int = same_knob(HeadConfig, "seed")
    l2: float = same_knob(HeadConfig, "l2")
    label_smoothing: float = same_knob(HeadConfig, "label_smoothing")
    class_weights: bool = same_knob(HeadConfig, "class_weights")
    tune_seconds: int = same_knob(HeadConfig, "tune_seconds")
    augment_views: int = same_knob(ViewPolicy, "augment_views")
    test_time_augmentation: bool = same_knob(ViewPolicy, "test_time_augmentation")
    test_time_views: int = same_knob(ViewPolicy, "test_time_views")
    fine_tune_mode: str = same_knob(FineTuneConfig, "fine_tune_mode")
    fine_tune_fraction: float = same_knob(FineTuneConfig, "fine_tune_fraction")
    fine_tune_learning_rate: float = same_knob(FineTuneConfig, "fine_tune_learning_rate")
    fine_tune_epochs: int = same_knob(FineTuneConfig, "fine_tune_epochs")
    measure_transfer_lift: bool = same_knob(RunSettings, "measure_transfer_lift")
    accuracy_threshold: float = same_knob(BlessingPolicy, "accuracy_threshold")
    auc_threshold: float = same_knob(BlessingPolicy, "auc_threshold")
    champion_tolerance: float = same_knob(BlessingPolicy, "champion_tolerance")
    max_test_interval: float = same_knob(BlessingPolicy, "max_test_interval")
    bless_small_test_set: bool = same_knob(BlessingPolicy, "bless_small_test_set")
    serving_root: str = same_knob(RunSettings, "serving_root")
    model_name: str = same_knob(RunSettings, "model_name")
    audit_top: int = same_knob(RunSettings, "audit_top")
    edge_export: bool = same_knob(RunSettings, "edge_export")
    cache_root: str = same_knob(RunSettings, "cache_root")
    use_cache: bool = same_knob(RunSettings, "use_cache")

    def __post_init__(self):
        for part in PARTS:
            self.part(part)

    def part(self, config: type):
        """One part's typed config, built (and so validated) from these knobs."""
        return config(**{name: getattr(self, name) for name in knob_fields(config)})

    def base_network_spec(self) -> BaseNetworkSpec:
        """The base network these parameters describe."""
        return self.part(BaseNetworkSpec)

    def to_arguments(self) -> dict:
        """The pipeline's arguments, as `headstart_pipeline(**arguments)` takes them (lists, not tuples)."""
        return {name: list(value) if isinstance(value, tuple) else value
                for name, value in dataclasses.asdict(self).items()}
