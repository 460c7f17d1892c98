"""KFP component for ingest: its interface; `executor.execute` does the work."""

from kfp import dsl
from kfp.dsl import Dataset, Output

from components.common.config.knobs import documented
from components.common.config.run_settings import RunSettings
from components.common.contract.artifact_files import ARTIFACTS
from components.container_image import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
@documented(RunSettings, more=ARTIFACTS)
def ingest(source: str, exclude: str, relabel: str, cache_root: str, use_cache: bool,
           raw_examples: Output[Dataset]):
    """Reads the source into raw examples and a label vocabulary."""
    arguments = dict(locals())  # every input and output, before the import adds a name
    from components.ingest.executor import execute

    execute(**arguments)
