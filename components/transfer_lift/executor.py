"""Transfer-lift's executor: the KFP artifacts mapped to `core.run`, behind the step cache."""

import os

from components.common.runtime.step_process import prepare_step_process
from components.common.storage import step_cache


def execute(*, measure_transfer_lift: bool, examples, base_network, hidden_units: list, dropout: float,
            learning_rate: float, epochs: int, batch_size: int, patience: int, seed: int, l2: float,
            label_smoothing: float, class_weights: bool, trust_base_model: bool, cache_root: str, use_cache: bool,
            lift) -> None:
    """Trains the same head on random-weight features when asked; else records that it was not measured."""
    prepare_step_process(lift)
    cache = step_cache.open_step(
        cache_root, "transfer-lift", use_cache=use_cache,
        params={"measure_transfer_lift": measure_transfer_lift, "hidden_units": hidden_units, "dropout": dropout,
                "learning_rate": learning_rate, "epochs": epochs, "batch_size": batch_size, "patience": patience,
                "seed": seed, "l2": l2, "label_smoothing": label_smoothing, "class_weights": class_weights,
                "trust_base_model": trust_base_model},
        inputs={"examples": examples, "base_network": base_network}, outputs={"lift": lift},
    )
    if cache.restore():
        return
    if not measure_transfer_lift:  # without importing TensorFlow: it costs seconds per step process
        from components.common.contract.artifact_files import LIFT
        from components.common.storage import atomic_files

        os.makedirs(lift.path, exist_ok=True)
        atomic_files.write_json(os.path.join(lift.path, LIFT), {"measured": False})
        lift.metadata.update({"measured": False, "random_accuracy": None})
        cache.save()
        return
    from components.common.config.head_config import HeadConfig
    from components.common.contract.artifact_files import BASE_MODEL_FILE
    from components.transfer_lift import core

    config = HeadConfig(
        hidden_units=tuple(int(units) for units in hidden_units), dropout=dropout, learning_rate=learning_rate,
        epochs=epochs, batch_size=batch_size, patience=patience, seed=seed, l2=l2,
        label_smoothing=label_smoothing, class_weights=class_weights,
    )
    result = core.run(examples_dir=examples.path, base_model_path=os.path.join(base_network.path, BASE_MODEL_FILE),
                      head_config=config, output_dir=lift.path, batch_size=batch_size,
                      trust_base_model=trust_base_model)
    lift.metadata.update({"measured": True, "random_accuracy": result.random_accuracy})
    cache.save()
