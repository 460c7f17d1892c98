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
    push_result: Output[Artifact],
):
    """Exports the blessed model into the serving root; does nothing for a model not blessed."""
    import os

    from components.common.logs import setup_step_logging

    setup_step_logging()
    from components.extract_features.core import BASE_MODEL_FILE
    from components.push import core
    from components.train_head.core import HEAD_MODEL_FILE

    result = core.run(
        evaluation_dir=evaluation.path, examples_dir=examples.path,
        base_model_path=os.path.join(base_network.path, BASE_MODEL_FILE),
        head_model_path=os.path.join(head.path, HEAD_MODEL_FILE),
        serving_root=serving_root, model_name=model_name, output_dir=push_result.path, run_id=run_id,
    )
    push_result.metadata.update({"pushed": result.pushed, "uri": result.uri or "", "reason": result.reason})
