"""KFP component for head training: maps artifacts to `components.train_head.core.run`."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Model, Output

from components.image import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def train_head(
    features: Input[Dataset],
    hidden_units: list,
    dropout: float,
    learning_rate: float,
    epochs: int,
    batch_size: int,
    patience: int,
    seed: int,
    l2: float,
    label_smoothing: float,
    class_weights: bool,
    cache_root: str,
    use_cache: bool,
    head: Output[Model],
):
    """Trains the MLP head on the cached features."""
    from components.common import step_cache
    from components.common.fast_exit import exit_fast_once_output_written
    from components.common.lean_imports import keep_scikit_learn_out
    from components.common.logs import setup_step_logging

    setup_step_logging()
    exit_fast_once_output_written()
    keep_scikit_learn_out()
    cache = step_cache.open_step(
        cache_root, "train-head",
        params={"hidden_units": hidden_units, "dropout": dropout, "learning_rate": learning_rate, "epochs": epochs,
                "batch_size": batch_size, "patience": patience, "seed": seed, "l2": l2,
                "label_smoothing": label_smoothing, "class_weights": class_weights},
        inputs={"features": features}, outputs={"head": head}, use_cache=use_cache,
    )
    if cache.restore():
        return
    from components.common.head_training import HeadConfig
    from components.train_head import core

    config = HeadConfig(
        hidden_units=tuple(int(units) for units in hidden_units), dropout=dropout, learning_rate=learning_rate,
        epochs=epochs, batch_size=batch_size, patience=patience, seed=seed, l2=l2,
        label_smoothing=label_smoothing, class_weights=class_weights,
    )
    result = core.run(features_dir=features.path, head_model_dir=head.path, config=config)
    head.metadata.update({"epochs_run": result.epochs_run, "best_epoch": result.best_epoch,
                          "hidden_units": list(config.hidden_units)})
    cache.save()
