"""Transfer-lift's executor: the KFP artifacts mapped to `core.run`, behind the step cache."""

import os

from components.common.runtime.step_process import prepare_step_process
from components.common.storage import step_cache


def execute(*, measure_transfer_lift: bool, examples, base_network, head, trust_base_model: bool, cache_root: str,
            use_cache: bool, lift) -> None:
    """Trains the same head on random-weight features when asked; else records that it was not measured.

    The same head is the one train_head trained: its settings as its history recorded them, the
    values a head search chose included, so the lift compares like with like.
    """
    prepare_step_process(lift)
    cache = step_cache.open_step(
        cache_root, "transfer-lift", use_cache=use_cache,
        params={"measure_transfer_lift": measure_transfer_lift, "trust_base_model": trust_base_model},
        inputs={"examples": examples, "base_network": base_network, "head": head}, outputs={"lift": lift},
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
    from components.common.contract.artifact_files import BASE_MODEL_FILE
    from components.common.model.head_training import recorded_config
    from components.transfer_lift import core

    config = recorded_config(head.path)
    result = core.run(examples_dir=examples.path, base_model_path=os.path.join(base_network.path, BASE_MODEL_FILE),
                      head_config=config, output_dir=lift.path, batch_size=config.batch_size,
                      trust_base_model=trust_base_model)
    lift.metadata.update({"measured": True, "random_accuracy": result.random_accuracy})
    cache.save()
