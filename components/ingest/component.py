"""KFP component for ingest: maps artifacts to `components.ingest.core.run`."""

from kfp import dsl
from kfp.dsl import Dataset, Output

from components.image import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def ingest(source: str, raw_examples: Output[Dataset]):
    """Reads the source into raw examples and a label vocabulary."""
    from components.common.logs import setup_step_logging

    setup_step_logging()
    from components.ingest import core

    result = core.run(source=source, output_dir=raw_examples.path)
    raw_examples.metadata.update(
        {"count": result.count, "labels": list(result.labels), "duplicates": result.duplicates,
         "rejected": result.rejected}
    )
