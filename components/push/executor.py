"""Push's executor: the KFP artifacts mapped to `core.run`; never cached, as it writes to serving."""

import os
from contextlib import nullcontext

from components.common.contract.artifact_files import BASE_MODEL_FILE, BLESSING, HEAD_MODEL_FILE, PREDICTIONS
from components.common.runtime.step_process import prepare_step_process
from components.common.storage import atomic_files, step_cache
from components.push.result import already_serving, write_push_result


def execute(*, evaluation, examples, base_network, head, serving_root: str, model_name: str, run_id: str,
            edge_export: bool, trust_base_model: bool, cache_root: str, use_cache: bool, push_result) -> None:
    """Exports the blessed model into the serving root; does nothing for a model not blessed or already serving."""
    prepare_step_process(push_result)
    cache = step_cache.open_step(
        cache_root, "push", use_cache=use_cache,
        params={"serving_root": serving_root, "model_name": model_name, "edge_export": edge_export,
                "trust_base_model": trust_base_model},
        inputs={"evaluation": evaluation, "base_network": base_network, "head": head},
        outputs={"push_result": push_result}, not_cacheable="it writes to the serving root",
    )
    model_key = step_cache.joined_key(base_network.path, head.path)
    unchanged = already_serving(evaluation.path, serving_root, model_name, model_key)
    if unchanged:
        write_push_result(push_result.path, unchanged)
        push_result.metadata.update({"pushed": False, "uri": unchanged.uri, "reason": unchanged.reason})
        cache.record_reused(unchanged.reason)
        return
    cache.restore()  # records why it runs
    from components.push.infra_check import InfraCheck

    blessed = atomic_files.read_json(os.path.join(evaluation.path, BLESSING))["blessed"]
    # Started before this process imports TensorFlow: both imports run at once, on two cores.
    with InfraCheck(examples.path, os.path.join(evaluation.path, PREDICTIONS)) if blessed else nullcontext() as infra:
        from components.push import core

        result = core.run(
            evaluation_dir=evaluation.path, examples_dir=examples.path,
            base_model_path=os.path.join(base_network.path, BASE_MODEL_FILE),
            head_model_path=os.path.join(head.path, HEAD_MODEL_FILE),
            serving_root=serving_root, model_name=model_name, output_dir=push_result.path, run_id=run_id,
            model_key=model_key, infra_check=infra, trust_base_model=trust_base_model, edge_export=edge_export,
        )
    push_result.metadata.update({"pushed": result.pushed, "uri": result.uri or "", "reason": result.reason})
    cache.save()
