"""KFP component for head training: its interface; `executor.execute` does the work."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Model, Output

from components.common.config.head_config import HeadConfig
from components.common.config.knobs import documented
from components.common.config.run_settings import RunSettings
from components.common.contract.artifact_files import ARTIFACTS
from components.container_image import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
@documented(HeadConfig, RunSettings, more=ARTIFACTS)
def train_head(
    features: Input[Dataset],
    hidden_units: list,
    dropout: float,
    learning_rate: float,
    epochs: int,
    batch_size: int,
    patience: int,
    seed: int,
    l2: float,
    label_smoothing: float,
    class_weights: bool,
    tune_seconds: int,
    cache_root: str,
    use_cache: bool,
    head: Output[Model],
):
    """Trains the MLP head on the cached features."""
    arguments = dict(locals())  # every input and output, before the import adds a name
    from components.train_head.executor import execute

    execute(**arguments)
