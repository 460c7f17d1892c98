"""KFP component for evaluation: its interface; `executor.execute` does the work."""

from kfp import dsl
from kfp.dsl import HTML, Artifact, ClassificationMetrics, Dataset, Input, Metrics, Model, Output

from components.common.config.base_network_spec import BaseNetworkSpec
from components.common.config.head_config import HeadConfig
from components.common.config.knobs import documented
from components.common.config.run_settings import RunSettings
from components.common.config.view_policy import ViewPolicy
from components.common.contract.artifact_files import ARTIFACTS
from components.container_image import IMAGE
from components.evaluate.blessing import BlessingPolicy


@dsl.component(base_image=IMAGE, install_kfp_package=False)
@documented(BlessingPolicy, RunSettings, HeadConfig, BaseNetworkSpec, ViewPolicy, more=ARTIFACTS)
def evaluate(
    examples: Input[Dataset],
    features: Input[Dataset],
    base_network: Input[Model],
    head: Input[Model],
    lift: Input[Artifact],
    audit: Input[Artifact],
    accuracy_threshold: float,
    auc_threshold: float,
    champion_tolerance: float,
    max_test_interval: float,
    bless_small_test_set: bool,
    serving_root: str,
    model_name: str,
    run_id: str,
    batch_size: int,
    trust_base_model: bool,
    test_time_augmentation: bool,
    cache_root: str,
    use_cache: bool,
    evaluation: Output[Artifact],
    metrics: Output[Metrics],
    classification_metrics: Output[ClassificationMetrics],
    report: Output[HTML],
):
    """Evaluates base + head on the test split against the champion and decides the blessing."""
    arguments = dict(locals())  # every input and output, before the import adds a name
    from components.evaluate.executor import execute

    execute(**arguments)
