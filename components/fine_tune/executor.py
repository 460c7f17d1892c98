"""Fine-tune's executor: the KFP artifacts mapped to `core.run`, or passed through, behind the step cache."""

import os

from components.common.runtime.step_process import prepare_step_process
from components.common.storage import step_cache


def execute(*, examples, base_network, head, fine_tune_mode: str, fine_tune_fraction: float,
            fine_tune_learning_rate: float, fine_tune_epochs: int, batch_size: int, seed: int,
            trust_base_model: bool, cache_root: str, use_cache: bool, tuned_head, tuned_base_network) -> None:
    """Trains the top of the base and the head end to end when enabled; else passes them through."""
    prepare_step_process(tuned_head)  # before gpus_tensorflow_sees, which may import TensorFlow
    from components.fine_tune.config import gpus_tensorflow_sees

    cache = step_cache.open_step(
        cache_root, "fine-tune", use_cache=use_cache,
        params={"fine_tune_mode": fine_tune_mode, "fine_tune_fraction": fine_tune_fraction,
                "fine_tune_learning_rate": fine_tune_learning_rate, "fine_tune_epochs": fine_tune_epochs,
                "batch_size": batch_size, "seed": seed, "trust_base_model": trust_base_model},
        inputs={"examples": examples, "base_network": base_network, "head": head},
        outputs={"tuned_head": tuned_head, "tuned_base_network": tuned_base_network},
        # "auto" fine-tunes only where TensorFlow finds a GPU: the same parameters mean other work there.
        extra={"gpus_seen": str(gpus_tensorflow_sees())} if fine_tune_mode == "auto" else {},
    )
    if cache.restore():
        return
    # A skipped phase two never imports TensorFlow: it costs seconds per step process.
    from components.common.contract.artifact_files import BASE_MODEL_FILE, HEAD_MODEL_FILE
    from components.fine_tune.config import FineTuneConfig, pass_through

    config = FineTuneConfig(fine_tune_mode=fine_tune_mode, fine_tune_fraction=fine_tune_fraction,
                            fine_tune_learning_rate=fine_tune_learning_rate, fine_tune_epochs=fine_tune_epochs,
                            batch_size=batch_size, seed=seed)
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
