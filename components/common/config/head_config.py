"""How the head is built and trained: the typed config, validated without importing TensorFlow."""

from dataclasses import dataclass

from components.common.config.knobs import knob


@dataclass(frozen=True)
class HeadConfig:
    """How the head is built and trained (each field's help says what it does)."""

    hidden_units: tuple[int, ...] = knob((128,), "sizes of the head's hidden Dense layers; none for a logistic "
                                         "(softmax) head")
    dropout: float = knob(0.2, "dropout rate before each of the head's Dense layers")
    learning_rate: float = knob(1e-3, "Adam's learning rate for the head")
    epochs: int = knob(20, "the most epochs of head training")
    batch_size: int = knob(32, "batch size of feature extraction, training and evaluation")
    patience: int = knob(5, "early-stopping patience: epochs without eval-loss improvement before training stops")
    seed: int = knob(42, "seeds the head's weights, dropout and shuffling, and fine-tuning's augmentation")
    l2: float = knob(0.0, "L2 penalty on the head's kernels; 0 for none")
    label_smoothing: float = knob(0.0, "label smoothing of the head's loss: how much of each target is spread "
                                  "over the other classes; 0 for none")
    class_weights: bool = knob(False, "weigh each class by the inverse of its share of the training images, so a "
                               "rare class counts as much as a common one (for imbalanced data)")
    tune_seconds: int = knob(0, "seconds for a search over the head's hidden units, dropout, L2 and learning rate "
                             "(successive halving on the eval split) before it trains with the best; 0 for none")

    def __post_init__(self):
        if any(units < 1 for units in self.hidden_units):
            raise ValueError(f"hidden_units must be positive, got {list(self.hidden_units)}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.learning_rate <= 0:
            raise ValueError(f"learning_rate must be positive, got {self.learning_rate}")
        if self.epochs < 1:
            raise ValueError(f"epochs must be at least 1, got {self.epochs}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {self.batch_size}")
        if self.patience < 0:
            raise ValueError(f"patience must be non-negative, got {self.patience}")
        if self.l2 < 0:
            raise ValueError(f"l2 must be non-negative, got {self.l2}")
        if self.tune_seconds < 0:
            raise ValueError(f"tune_seconds must be non-negative, got {self.tune_seconds}")
        if not 0 <= self.label_smoothing < 1:
            raise ValueError(f"label_smoothing must be in [0, 1), got {self.label_smoothing}")
