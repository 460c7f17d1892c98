"""Train-head's executor: the KFP artifacts mapped to `core.run`, behind the step cache."""

from components.common.runtime.step_process import prepare_step_process
from components.common.storage import step_cache


def execute(*, features, hidden_units: list, dropout: float, learning_rate: float, epochs: int, batch_size: int,
            patience: int, seed: int, l2: float, label_smoothing: float, class_weights: bool, tune_seconds: int,
            cache_root: str, use_cache: bool, head) -> None:
    """Trains the head on `features` into `head`, unless the cache holds it."""
    prepare_step_process(head)
    cache = step_cache.open_step(
        cache_root, "train-head", use_cache=use_cache,
        params={"hidden_units": hidden_units, "dropout": dropout, "learning_rate": learning_rate, "epochs": epochs,
                "batch_size": batch_size, "patience": patience, "seed": seed, "l2": l2,
                "label_smoothing": label_smoothing, "class_weights": class_weights,
                "tune_seconds": tune_seconds},
        inputs={"features": features}, outputs={"head": head},
    )
    if cache.restore():
        return
    from components.common.config.head_config import HeadConfig
    from components.train_head import core

    config = HeadConfig(
        hidden_units=tuple(int(units) for units in hidden_units), dropout=dropout, learning_rate=learning_rate,
        epochs=epochs, batch_size=batch_size, patience=patience, seed=seed, l2=l2,
        label_smoothing=label_smoothing, class_weights=class_weights, tune_seconds=tune_seconds,
    )
    result = core.run(features_dir=features.path, head_model_dir=head.path, config=config)
    head.metadata.update({"epochs_run": result.epochs_run, "best_epoch": result.best_epoch,
                          "hidden_units": list(result.config.hidden_units), "dropout": result.config.dropout,
                          "l2": result.config.l2, "learning_rate": result.config.learning_rate})
    cache.save()
