"""Ingest's executor: the KFP artifacts mapped to `core.run`, behind the step cache."""

from components.common import step_cache
from components.common.step_process import prepare_step_process


def execute(*, source: str, cache_root: str, use_cache: bool, raw_examples) -> None:
    """Reads the source into `raw_examples`, unless the cache holds it for this source's content."""
    # The demo's digits come from scikit-learn: it stays importable here.
    prepare_step_process(raw_examples, keep_scikit_learn=True)
    from components.ingest.source_digest import source_digest

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
    raw_examples.metadata.update({"count": result.count, "labels": list(result.labels),
                                  "duplicates": result.duplicates, "rejected": result.rejected})
    cache.save()
