"""Preprocess's executor: the KFP artifacts mapped to `core.run`, behind the step cache."""

from components.common.runtime.step_process import prepare_step_process
from components.common.storage import step_cache


def execute(*, raw_examples, image_size: int, train_fraction: float, eval_fraction: float, beam_args: list,
            compact_examples: bool, cache_root: str, use_cache: bool, examples) -> None:
    """Decodes, resizes and splits `raw_examples` into `examples`, unless the cache holds them."""
    # The Beam runner flags choose where the work runs, not what it produces: not part of the key.
    prepare_step_process(examples)
    cache = step_cache.open_step(
        cache_root, "preprocess", use_cache=use_cache,
        params={"image_size": image_size, "train_fraction": train_fraction, "eval_fraction": eval_fraction,
                "compact_examples": compact_examples},
        inputs={"raw_examples": raw_examples}, outputs={"examples": examples},
    )
    if cache.restore():
        return
    from components.preprocess import core, runner_flags

    # A remote Beam runner (Dataflow) cannot see this container's paths: it reads and writes the
    # artifacts' gs:// URIs, which a cluster whose pipeline root is in Cloud Storage gives.
    remote = runner_flags.is_remote(beam_args)
    result = core.run(
        raw_dir=raw_examples.uri if remote else raw_examples.path,
        output_dir=examples.uri if remote else examples.path, image_size=image_size,
        train_fraction=train_fraction, eval_fraction=eval_fraction,
        beam_args=runner_flags.for_run(beam_args, input_uri=raw_examples.uri, output_uri=examples.uri),
        compact_examples=compact_examples,
    )
    examples.metadata.update({"counts": result.counts, "rejected": result.rejected, "image_size": result.image_size})
    cache.save()
