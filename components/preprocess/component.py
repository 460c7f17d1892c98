"""KFP component for preprocess: maps artifacts to `components.preprocess.core.run`."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Output

from components.image import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def preprocess(
    raw_examples: Input[Dataset],
    image_size: int,
    train_fraction: float,
    eval_fraction: float,
    beam_args: list,
    cache_root: str,
    use_cache: bool,
    examples: Output[Dataset],
):
    """Decodes, resizes and splits the raw examples with Apache Beam."""
    from components.common import step_cache
    from components.common.fast_exit import exit_fast_once_output_written
    from components.common.lean_imports import keep_scikit_learn_out
    from components.common.logs import setup_step_logging

    setup_step_logging()
    exit_fast_once_output_written()
    keep_scikit_learn_out()
    # The Beam runner flags choose where the work runs, not what it produces: not part of the key.
    cache = step_cache.open_step(
        cache_root, "preprocess",
        params={"image_size": image_size, "train_fraction": train_fraction, "eval_fraction": eval_fraction},
        inputs={"raw_examples": raw_examples}, outputs={"examples": examples}, use_cache=use_cache,
    )
    if cache.restore():
        return
    from components.preprocess import core

    # A remote Beam runner (Dataflow) cannot see this container's paths: on a cluster whose
    # pipeline root is in Cloud Storage, Beam reads and writes the artifacts' gs:// URIs.
    remote_runner = any(arg.startswith("--runner") and "direct" not in arg.lower() for arg in beam_args)
    remote = remote_runner and raw_examples.uri.startswith("gs://") and examples.uri.startswith("gs://")
    result = core.run(
        raw_dir=raw_examples.uri if remote else raw_examples.path,
        output_dir=examples.uri if remote else examples.path, image_size=image_size,
        train_fraction=train_fraction, eval_fraction=eval_fraction, beam_args=beam_args,
    )
    examples.metadata.update(
        {"counts": result.counts, "rejected": result.rejected, "image_size": result.image_size}
    )
    cache.save()
