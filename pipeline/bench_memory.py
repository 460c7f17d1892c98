"""Row 5 of `make bench`: the peak memory (RSS) of each step, with 1x and 4x the images.

Each step's core runs in its own process, as it does in the pipeline, and its peak resident set
comes from the kernel's accounting of that child (`os.wait4`). A step that streams its data
should peak at about the same memory at 4x the images; one that holds the data set grows with it.
"""

import os
import pathlib
import subprocess
import sys

# Each step as the pipeline runs it, on the directories the previous steps filled.
_STEP_CODE = {
    "ingest": "from components.ingest import core\n"
              "core.run(source={tree!r}, output_dir={work!r} + '/raw')",
    "preprocess": "from components.preprocess import core\n"
                  "core.run(raw_dir={work!r} + '/raw', output_dir={work!r} + '/examples', image_size={size})",
    "extract-features": "from components.extract_features import core\n"
                        "from components.extract_features.base_network import BaseNetworkSpec\n"
                        "spec = BaseNetworkSpec(name='mobilenet', alpha=0.25, weights={weights!r}, image_size={size})\n"
                        "core.run(examples_dir={work!r} + '/examples', features_dir={work!r} + '/features',\n"
                        "         base_model_dir={work!r} + '/base', spec=spec)",
    "train-head": "from components.train_head import core\n"
                  "core.run(features_dir={work!r} + '/features', head_model_dir={work!r} + '/head',\n"
                  "         config=core.HeadConfig(epochs=5, patience=5))",
    "evaluate": "from components.evaluate import core\n"
                "from components.evaluate.blessing import BlessingPolicy\n"
                "core.run(examples_dir={work!r} + '/examples', base_model_path={work!r} + '/base/base.keras',\n"
                "         head_model_path={work!r} + '/head/head.keras', output_dir={work!r} + '/evaluation',\n"
                "         policy=BlessingPolicy(accuracy_threshold=0.0))",
}
STEPS = list(_STEP_CODE)


def _peak_rss_mb(code: str) -> float:
    """Runs Python code in a child process; its peak resident set in MB."""
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                             env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    stderr = child.stderr.read()
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise RuntimeError(f"step failed in the memory benchmark:\n{stderr.decode(errors='replace')[-2000:]}")
    return usage.ru_maxrss / 1024  # Linux reports kilobytes


def peak_rss_per_step(tree: pathlib.Path, work: pathlib.Path, image_size: int, weights: str) -> dict[str, float]:
    """Peak RSS in MB of each step, run one after the other on `tree`."""
    work.mkdir(parents=True, exist_ok=True)
    return {step: _peak_rss_mb(code.format(tree=str(tree), work=str(work), size=image_size, weights=weights))
            for step, code in _STEP_CODE.items()}
