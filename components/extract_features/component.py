"""KFP component for feature extraction: its interface; `executor.execute` does the work."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Model, Output

from components.common.config.base_network_spec import BaseNetworkSpec
from components.common.config.head_config import HeadConfig
from components.common.config.knobs import documented
from components.common.config.run_settings import RunSettings
from components.common.config.view_policy import ViewPolicy
from components.common.contract.artifact_files import ARTIFACTS
from components.container_image import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
@documented(BaseNetworkSpec, HeadConfig, ViewPolicy, RunSettings, more=ARTIFACTS)
def extract_features(
    examples: Input[Dataset],
    base_model: str,
    base_weights: str,
    alpha: float,
    image_size: int,
    pooling: str,
    batch_size: int,
    trust_base_model: bool,
    augment_views: int,
    test_time_augmentation: bool,
    test_time_views: int,
    cache_root: str,
    use_cache: bool,
    features: Output[Dataset],
    base_network: Output[Model],
):
    """Runs the frozen base network once over every new image and saves it for evaluate and push."""
    arguments = dict(locals())  # every input and output, before the import adds a name
    from components.extract_features.executor import execute

    execute(**arguments)
