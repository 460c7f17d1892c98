"""KFP component for the transfer-lift baseline: maps artifacts to `components.transfer_lift.core.run`."""

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Model, Output

from components.image import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def transfer_lift(
    measure: bool,
    examples: Input[Dataset],
    base_network: Input[Model],
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
    trust_base_model: bool,
    cache_root: str,
    use_cache: bool,
    lift: Output[Artifact],
):
    """Trains the same head on features of the base's architecture with random weights."""
    import os

    from components.common import step_cache
    from components.common.fast_exit import exit_fast_once_output_written
    from components.common.lean_imports import keep_scikit_learn_out
    from components.common.logs import setup_step_logging

    setup_step_logging()
    exit_fast_once_output_written()
    keep_scikit_learn_out()
    cache = step_cache.open_step(
        cache_root, "transfer-lift",
        params={"measure": measure, "hidden_units": hidden_units, "dropout": dropout, "learning_rate": learning_rate,
                "epochs": epochs, "batch_size": batch_size, "patience": patience, "seed": seed, "l2": l2,
                "label_smoothing": label_smoothing, "class_weights": class_weights,
                "trust_base_model": trust_base_model},
        inputs={"examples": examples, "base_network": base_network}, outputs={"lift": lift}, use_cache=use_cache,
    )
    if cache.restore():
        return
    from components.common import storage
    from components.common.artifact_files import BASE_MODEL_FILE, LIFT

    if not measure:  # without importing TensorFlow: it costs seconds per step process
        os.makedirs(lift.path, exist_ok=True)
        storage.write_json(os.path.join(lift.path, LIFT), {"measured": False})
        lift.metadata.update({"measured": False, "random_accuracy": None})
        cache.save()
        return
    from components.common.head_training import HeadConfig
    from components.transfer_lift import core

    config = HeadConfig(
        hidden_units=tuple(int(units) for units in hidden_units), dropout=dropout, learning_rate=learning_rate,
        epochs=epochs, batch_size=batch_size, patience=patience, seed=seed, l2=l2,
        label_smoothing=label_smoothing, class_weights=class_weights,
    )
    result = core.run(measure=measure, examples_dir=examples.path,
                      base_model_path=os.path.join(base_network.path, BASE_MODEL_FILE), head_config=config,
                      output_dir=lift.path, batch_size=batch_size, trust_base_model=trust_base_model)
    lift.metadata.update({"measured": result.measured, "random_accuracy": result.random_accuracy})
    cache.save()
