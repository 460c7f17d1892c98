"""The work that needs no TensorFlow does not import it: the import costs seconds per step process."""

import subprocess
import sys

import pytest


@pytest.mark.parametrize("modules", [
    # ingest writes its records without TensorFlow
    ["components.ingest.core"],
    # a skipped fine-tune and an unmeasured transfer lift decide and write without it
    ["components.fine_tune.config", "components.common.contract.artifact_files",
     "components.common.storage.atomic_files"],
    # the cache-hit path of every step
    ["components.common.storage.step_cache"],
    # every step's executor, imported by its component before the step decides whether to work
    [f"components.{step}.executor" for step in ("ingest", "preprocess", "extract_features", "train_head",
                                                "fine_tune", "transfer_lift", "evaluate", "push")],
    # the typed configs, which the CLI reads to build its options and check values
    ["pipeline.definition.config", "pipeline.cli.run_options", "pipeline.cli.commands"],
])
def test_modules_do_not_import_tensorflow(modules):
    code = "; ".join(f"import {module}" for module in modules)
    code += "; import sys; print(sorted({'tensorflow', 'keras'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_keras_loads_without_scikit_learn_where_a_step_keeps_it_out():
    code = (
        "from components.common.runtime.lean_imports import keep_scikit_learn_out; keep_scikit_learn_out()\n"
        "import keras, sys\n"
        "keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])\n"
        "try:\n    import sklearn\nexcept ImportError:\n    print('kept out')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "kept out"
