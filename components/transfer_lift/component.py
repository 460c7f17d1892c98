"""KFP component for the transfer-lift baseline: its interface; `executor.execute` does the work."""

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Model, Output

from components.common.config.base_network_spec import BaseNetworkSpec
from components.common.config.knobs import documented
from components.common.config.run_settings import RunSettings
from components.common.contract.artifact_files import ARTIFACTS
from components.container_image import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
@documented(RunSettings, BaseNetworkSpec, more=ARTIFACTS)
def transfer_lift(
    measure_transfer_lift: bool,
    examples: Input[Dataset],
    base_network: Input[Model],
    head: Input[Model],
    trust_base_model: bool,
    cache_root: str,
    use_cache: bool,
    lift: Output[Artifact],
):
    """Trains the head train_head trained, as recorded, on features of the base's architecture, weights random."""
    arguments = dict(locals())  # every input and output, before the import adds a name
    from components.transfer_lift.executor import execute

    execute(**arguments)
