"""KFP component for fine-tuning: maps artifacts to `components.fine_tune.core.run`."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Model, Output

from components.image import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def fine_tune(
    examples: Input[Dataset],
    base_network: Input[Model],
    head: Input[Model],
    mode: str,
    unfreeze_fraction: float,
    learning_rate: float,
    epochs: int,
    batch_size: int,
    seed: int,
    trust_base_model: bool,
    cache_root: str,
    use_cache: bool,
    tuned_head: Output[Model],
    tuned_base_network: Output[Model],
):
    """Trains the top of the base and the head end to end when enabled; else passes them through."""
    import os

    from components.common import step_cache
    from components.common.fast_exit import exit_fast_once_output_written
    from components.common.lean_imports import keep_scikit_learn_out
    from components.common.logs import setup_step_logging
    from components.fine_tune.config import gpus_tensorflow_sees

    setup_step_logging()
    exit_fast_once_output_written()
    keep_scikit_learn_out()
    cache = step_cache.open_step(
        cache_root, "fine-tune",
        params={"mode": mode, "unfreeze_fraction": unfreeze_fraction, "learning_rate": learning_rate,
                "epochs": epochs, "batch_size": batch_size, "seed": seed, "trust_base_model": trust_base_model},
        inputs={"examples": examples, "base_network": base_network, "head": head},
        outputs={"tuned_head": tuned_head, "tuned_base_network": tuned_base_network},
        # "auto" fine-tunes only where TensorFlow finds a GPU: the same parameters mean other work there.
        extra={"gpus_seen": str(gpus_tensorflow_sees())} if mode == "auto" else {}, use_cache=use_cache,
    )
    if cache.restore():
        return
    # A skipped phase two never imports TensorFlow: it costs seconds per step process.
    from components.common.artifact_files import BASE_MODEL_FILE, HEAD_MODEL_FILE
    from components.fine_tune.config import FineTuneConfig, pass_through

    config = FineTuneConfig(mode=mode, unfreeze_fraction=unfreeze_fraction, learning_rate=learning_rate,
                            epochs=epochs, batch_size=batch_size, seed=seed)
    base_model_path = os.path.join(base_network.path, BASE_MODEL_FILE)
    head_model_path = os.path.join(head.path, HEAD_MODEL_FILE)
    reason = config.skip_reason()
    if reason is not None:
        result = pass_through(base_model_path, head_model_path, tuned_base_network.path, tuned_head.path, reason)
    else:
        from components.fine_tune import core

        result = core.run(examples_dir=examples.path, base_model_path=base_model_path,
                          head_model_path=head_model_path, base_output_dir=tuned_base_network.path,
                          head_output_dir=tuned_head.path, config=config, trust_base_model=trust_base_model)
    tuned_head.metadata.update({"fine_tuned": result.ran, "reason": result.reason,
                                "eval_accuracy_before": result.eval_accuracy_before,
                                "eval_accuracy_after": result.eval_accuracy_after})
    cache.save()
