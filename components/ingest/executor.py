"""Ingest's executor: the KFP artifacts mapped to `core.run`, behind the step cache."""

from components.common.runtime.step_process import prepare_step_process
from components.common.storage import step_cache


def execute(*, source: str, exclude: str, relabel: str, cache_root: str, use_cache: bool, raw_examples) -> None:
    """Reads the source into `raw_examples`, unless the cache holds it for this source's content."""
    # The demo's digits come from scikit-learn: it stays importable here.
    prepare_step_process(raw_examples, keep_scikit_learn=True)
    from components.common.contract import audit_csv
    from components.ingest.source_digest import source_digest

    digest = source_digest(source)
    # A person's edits of the audit's CSV: the step's result depends on their content, not their name.
    files = {name: audit_csv.read_file(uri) if uri else b"" for name, uri in (("exclude", exclude),
                                                                              ("relabel", relabel))}
    cache = step_cache.open_step(
        cache_root, "ingest", params={"source": source, "exclude": exclude, "relabel": relabel}, inputs={},
        outputs={"raw_examples": raw_examples},
        extra={"source": digest or "", **{name: audit_csv.file_digest(data) for name, data in files.items()}},
        use_cache=use_cache,
        not_cacheable=None if digest else f"{source} has no content digest: it is read on every run",
    )
    if cache.restore():
        return
    from components.ingest import core

    choices = {name: audit_csv.read_choices(uri, files[name], relabel=name == "relabel") if uri else None
               for name, uri in (("exclude", exclude), ("relabel", relabel))}
    result = core.run(source=source, output_dir=raw_examples.path, **choices)
    raw_examples.metadata.update({"count": result.count, "labels": list(result.labels),
                                  "duplicates": result.duplicates, "rejected": result.rejected})
    cache.save()
