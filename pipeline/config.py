"""The pipeline's typed configuration, with the same defaults as the pipeline's parameters.

Building a `PipelineConfig` validates every parameter before any step runs, so a bad value fails
at once with its name, not twenty minutes into a run.
"""

from dataclasses import asdict, dataclass

from components.evaluate.blessing import BlessingPolicy
from components.common.base_network import BaseNetworkSpec
from components.fine_tune.config import FineTuneConfig
from components.preprocess.splits import SplitPolicy
from components.common.head_training import HeadConfig


@dataclass(frozen=True)
class PipelineConfig:
    """Every parameter of the pipeline.

    Attributes:
        source: folder tree, CSV manifest, `tfds:NAME` or `demo:digits`.
        base_model: keras.applications name or path to a `.keras` base model.
        base_weights: `imagenet`, `none`, or a path to a weights file.
        alpha: MobileNet width multiplier.
        image_size: side of the square images the base network takes.
        pooling: `avg` or `flatten`.
        trust_base_model: load a `.keras` base without Keras safe mode (its Lambda layers run).
        train_fraction: share of train when the source gives no splits.
        eval_fraction: share of eval (carved from train when the source gives no eval split).
        beam_args: runner flags passed to Beam (DirectRunner by default).
        hidden_units: hidden layer sizes of the head.
        dropout: head dropout rate.
        learning_rate: Adam's learning rate.
        epochs: the most epochs of head training.
        batch_size: batch size of feature extraction, training and evaluation.
        patience: early-stopping patience, in epochs.
        seed: seeds the head's training.
        l2: L2 penalty on the head's kernels.
        label_smoothing: label smoothing of the head's loss.
        class_weights: weigh classes by the inverse of their share of the training images.
        fine_tune_mode: second phase, end to end on images: `auto` (on with a GPU), `on`, `off`.
        fine_tune_fraction: share of the base's weighted layers, from the top, that fine-tuning trains.
        fine_tune_learning_rate: fine-tuning's (low) learning rate.
        fine_tune_epochs: the most fine-tuning epochs.
        measure_transfer_lift: also train the head on a random-weight base and report both.
        accuracy_threshold: the least test accuracy that blesses a model.
        auc_threshold: the least test AUC that blesses a model; 0 for none.
        champion_tolerance: how much lower than the serving model's the accuracy may be.
        serving_root: where blessed models go, `<serving_root>/<model_name>/<version>/`.
        model_name: the model's name under the serving root.
        cache_root: where steps keep their outputs for reuse and extraction its feature store
            (see components/common/step_cache.py); "" for no cache.
        use_cache: False to run every step even where the cache holds its result (still saved).
    """

    source: str = "demo:digits"
    # The parts' own defaults, so the step cores and the pipeline cannot drift apart.
    base_model: str = BaseNetworkSpec.name
    base_weights: str = BaseNetworkSpec.weights
    alpha: float = BaseNetworkSpec.alpha
    image_size: int = BaseNetworkSpec.image_size
    pooling: str = BaseNetworkSpec.pooling
    trust_base_model: bool = BaseNetworkSpec.trusted
    train_fraction: float = SplitPolicy.train_fraction
    eval_fraction: float = SplitPolicy.eval_fraction
    beam_args: tuple[str, ...] = ()
    hidden_units: tuple[int, ...] = HeadConfig.hidden_units
    dropout: float = HeadConfig.dropout
    learning_rate: float = HeadConfig.learning_rate
    epochs: int = HeadConfig.epochs
    batch_size: int = HeadConfig.batch_size
    patience: int = HeadConfig.patience
    seed: int = HeadConfig.seed
    l2: float = HeadConfig.l2
    label_smoothing: float = HeadConfig.label_smoothing
    class_weights: bool = HeadConfig.class_weights
    fine_tune_mode: str = FineTuneConfig.mode
    fine_tune_fraction: float = FineTuneConfig.unfreeze_fraction
    fine_tune_learning_rate: float = FineTuneConfig.learning_rate
    fine_tune_epochs: int = FineTuneConfig.epochs
    measure_transfer_lift: bool = False
    accuracy_threshold: float = BlessingPolicy.accuracy_threshold
    auc_threshold: float = BlessingPolicy.auc_threshold
    champion_tolerance: float = BlessingPolicy.champion_tolerance
    serving_root: str = "serving"
    model_name: str = "headstart"
    cache_root: str = ""
    use_cache: bool = True

    def __post_init__(self):
        if not self.source:
            raise ValueError("source must not be empty")
        self.base_network_spec()
        SplitPolicy(self.train_fraction, self.eval_fraction)
        HeadConfig(self.hidden_units, self.dropout, self.learning_rate, self.epochs, self.batch_size,
                   self.patience, self.seed, self.l2, self.label_smoothing, self.class_weights)
        FineTuneConfig(self.fine_tune_mode, self.fine_tune_fraction, self.fine_tune_learning_rate,
                       self.fine_tune_epochs)
        BlessingPolicy(self.accuracy_threshold, self.auc_threshold, self.champion_tolerance)
        if not self.model_name or "/" in self.model_name or self.model_name.startswith("."):
            raise ValueError(f"model_name must be a plain directory name, got {self.model_name!r}")

    def base_network_spec(self) -> BaseNetworkSpec:
        """The base network these parameters describe (validated as it is built)."""
        return BaseNetworkSpec(self.base_model, self.base_weights, self.alpha, self.image_size, self.pooling,
                               self.trust_base_model)

    def to_arguments(self) -> dict:
        """The pipeline's arguments, as `headstart_pipeline(**arguments)` takes them."""
        arguments = asdict(self)
        arguments["beam_args"] = list(self.beam_args)
        arguments["hidden_units"] = list(self.hidden_units)
        return arguments
