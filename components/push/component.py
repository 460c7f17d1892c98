"""KFP component for push: its interface; `executor.execute` does the work."""

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Model, Output

from components.common.config.base_network_spec import BaseNetworkSpec
from components.common.config.knobs import documented
from components.common.config.run_settings import RunSettings
from components.common.contract.artifact_files import ARTIFACTS
from components.container_image import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
@documented(RunSettings, BaseNetworkSpec, more=ARTIFACTS)
def push(
    evaluation: Input[Artifact],
    examples: Input[Dataset],
    base_network: Input[Model],
    head: Input[Model],
    serving_root: str,
    model_name: str,
    run_id: str,
    edge_export: bool,
    trust_base_model: bool,
    cache_root: str,
    use_cache: bool,
    push_result: Output[Artifact],
):
    """Exports the blessed model into the serving root; does nothing for a model not blessed."""
    arguments = dict(locals())  # every input and output, before the import adds a name
    from components.push.executor import execute

    execute(**arguments)
