"""KFP component for preprocess: its interface; `executor.execute` does the work."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Output

from components.common.config.base_network_spec import BaseNetworkSpec
from components.common.config.knobs import documented
from components.common.config.run_settings import RunSettings
from components.common.contract.artifact_files import ARTIFACTS
from components.container_image import IMAGE
from components.preprocess.splits import SplitPolicy


@dsl.component(base_image=IMAGE, install_kfp_package=False)
@documented(BaseNetworkSpec, SplitPolicy, RunSettings, more=ARTIFACTS)
def preprocess(
    raw_examples: Input[Dataset],
    image_size: int,
    train_fraction: float,
    eval_fraction: float,
    beam_args: list,
    compact_examples: bool,
    cache_root: str,
    use_cache: bool,
    examples: Output[Dataset],
):
    """Decodes, resizes and splits the raw examples with Apache Beam."""
    arguments = dict(locals())  # every input and output, before the import adds a name
    from components.preprocess.executor import execute

    execute(**arguments)
