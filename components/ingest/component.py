"""KFP component for ingest: maps artifacts to `components.ingest.core.run`."""

from kfp import dsl
from kfp.dsl import Dataset, Output

from components.image import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def ingest(source: str, cache_root: str, use_cache: bool, raw_examples: Output[Dataset]):
    """Reads the source into raw examples and a label vocabulary."""
    from components.common import step_cache
    from components.common.fast_exit import exit_fast_once_output_written
    from components.common.logs import setup_step_logging
    from components.ingest.source_digest import source_digest

    setup_step_logging()
    exit_fast_once_output_written()
    digest = source_digest(source)
    cache = step_cache.open_step(
        cache_root, "ingest", params={"source": source}, inputs={}, outputs={"raw_examples": raw_examples},
        extra={"source": digest or ""}, use_cache=use_cache,
        not_cacheable=None if digest else f"{source} has no content digest: it is read on every run",
    )
    if cache.restore():
        return
    from components.ingest import core

    result = core.run(source=source, output_dir=raw_examples.path)
    raw_examples.metadata.update(
        {"count": result.count, "labels": list(result.labels), "duplicates": result.duplicates,
         "rejected": result.rejected}
    )
    cache.save()
