"""KFP component for push: maps artifacts to `components.push.core.run`."""

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Model, Output

from components.image import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def push(
    evaluation: Input[Artifact],
    examples: Input[Dataset],
    base_network: Input[Model],
    head: Input[Model],
    serving_root: str,
    model_name: str,
    run_id: str,
    trust_base_model: bool,
    cache_root: str,
    use_cache: bool,
    push_result: Output[Artifact],
):
    """Exports the blessed model into the serving root; does nothing for a model not blessed."""
    import os

    from components.common import step_cache, storage
    from components.common.artifact_files import BLESSING, PUSH_RESULT
    from components.common.fast_exit import exit_fast_once_output_written
    from components.common.lean_imports import keep_scikit_learn_out
    from components.common.logs import setup_step_logging
    from components.common.serving_layout import serving_same_model

    setup_step_logging()
    exit_fast_once_output_written()
    keep_scikit_learn_out()
    cache = step_cache.open_step(
        cache_root, "push",
        params={"serving_root": serving_root, "model_name": model_name, "trust_base_model": trust_base_model},
        inputs={"evaluation": evaluation, "base_network": base_network, "head": head},
        outputs={"push_result": push_result}, not_cacheable="it writes to the serving root",
    )
    model_key = step_cache.joined_key(base_network.path, head.path)
    serving = serving_same_model(serving_root, model_name, model_key)
    if serving and storage.read_json(os.path.join(evaluation.path, BLESSING))["blessed"]:
        version = int(os.path.basename(serving))
        reason = f"already serving: version {version} holds this same model, not pushed again"
        storage.write_json(os.path.join(push_result.path, PUSH_RESULT),
                           {"pushed": False, "uri": serving, "version": version, "reason": reason})
        push_result.metadata.update({"pushed": False, "uri": serving, "reason": reason})
        cache.record_reused(reason)
        return
    cache.restore()  # records why it runs
    from contextlib import nullcontext

    from components.common.artifact_files import BASE_MODEL_FILE, HEAD_MODEL_FILE, PREDICTIONS
    from components.push.infra_check import InfraCheck

    blessed = storage.read_json(os.path.join(evaluation.path, BLESSING))["blessed"]
    # Started before this process imports TensorFlow: both imports run at once, on two cores.
    with InfraCheck(examples.path, os.path.join(evaluation.path, PREDICTIONS)) if blessed else nullcontext() as infra:
        from components.push import core

        result = core.run(
            evaluation_dir=evaluation.path, examples_dir=examples.path,
            base_model_path=os.path.join(base_network.path, BASE_MODEL_FILE),
            head_model_path=os.path.join(head.path, HEAD_MODEL_FILE),
            serving_root=serving_root, model_name=model_name, output_dir=push_result.path, run_id=run_id,
            model_key=model_key, infra_check=infra, trust_base_model=trust_base_model,
        )
    push_result.metadata.update({"pushed": result.pushed, "uri": result.uri or "", "reason": result.reason})
    cache.save()
