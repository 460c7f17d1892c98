"""KFP component for fine-tuning: its interface; `executor.execute` does the work."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Model, Output

from components.common.config.base_network_spec import BaseNetworkSpec
from components.common.config.knobs import documented
from components.common.config.run_settings import RunSettings
from components.common.contract.artifact_files import ARTIFACTS
from components.container_image import IMAGE
from components.fine_tune.config import FineTuneConfig


@dsl.component(base_image=IMAGE, install_kfp_package=False)
@documented(FineTuneConfig, BaseNetworkSpec, RunSettings, more=ARTIFACTS)
def fine_tune(
    examples: Input[Dataset],
    base_network: Input[Model],
    head: Input[Model],
    fine_tune_mode: str,
    fine_tune_fraction: float,
    fine_tune_learning_rate: float,
    fine_tune_epochs: int,
    batch_size: int,
    seed: int,
    trust_base_model: bool,
    cache_root: str,
    use_cache: bool,
    tuned_head: Output[Model],
    tuned_base_network: Output[Model],
):
    """Trains the top of the base and the head end to end when enabled; else passes them through."""
    arguments = dict(locals())  # every input and output, before the import adds a name
    from components.fine_tune.executor import execute

    execute(**arguments)
