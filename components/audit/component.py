"""KFP component for the data audit: its interface; `executor.execute` does the work."""

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Output

from components.common.config.knobs import documented
from components.common.config.run_settings import RunSettings
from components.common.contract.artifact_files import ARTIFACTS
from components.container_image import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
@documented(RunSettings, more=ARTIFACTS)
def audit_data(
    examples: Input[Dataset],
    features: Input[Dataset],
    audit_top: int,
    cache_root: str,
    use_cache: bool,
    audit: Output[Artifact],
):
    """Audits the data on the extracted features: likely mislabelled images, duplicates, outliers, balance."""
    arguments = dict(locals())  # every input and output, before the import adds a name
    from components.audit.executor import execute

    execute(**arguments)
