"""The work that needs no TensorFlow does not import it: the import costs seconds per step process."""

import subprocess
import sys

import pytest


@pytest.mark.parametrize("modules", [
    # ingest writes its records without TensorFlow
    ["components.ingest.core"],
    # a skipped fine-tune and an unmeasured transfer lift decide and write without it
    ["components.fine_tune.config", "components.common.artifact_files", "components.common.storage"],
    # the cache-hit path of every step
    ["components.common.step_cache"],
])
def test_modules_do_not_import_tensorflow(modules):
    code = "; ".join(f"import {module}" for module in modules)
    code += "; import sys; print(sorted({'tensorflow', 'keras'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
