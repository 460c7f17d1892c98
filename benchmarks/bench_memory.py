"""Row 5 of `make bench`: the peak memory (RSS) of each step, with 1x and 4x the images.

Each step's core runs in its own process, as it does in the pipeline, and reports its peak
resident set as the kernel keeps it for that process's own memory (`VmHWM` in /proc/self/status).
Not `getrusage`: its maximum carries over the parent's resident set across fork and exec, and the
benchmark's parent holds TensorFlow. A step that streams its data should peak at about the same
memory at 4x the images; one that holds the data set grows with it.
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
                        "from components.common.model.base_network import BaseNetworkSpec\n"
                        "spec = BaseNetworkSpec(base_model='mobilenet', alpha=0.25, base_weights={weights!r},\n"
                        "                       image_size={size})\n"
                        "core.run(examples_dir={work!r} + '/examples', features_dir={work!r} + '/features',\n"
                        "         base_model_dir={work!r} + '/base', spec=spec)",
    "train-head": "from components.common.config.head_config import HeadConfig\n"
                  "from components.train_head import core\n"
                  "core.run(features_dir={work!r} + '/features', head_model_dir={work!r} + '/head',\n"
                  "         config=HeadConfig(epochs=5, patience=5))",
    "evaluate": "from components.evaluate import core\n"
                "from components.evaluate.blessing import BlessingPolicy\n"
                "core.run(examples_dir={work!r} + '/examples', base_model_path={work!r} + '/base/base.keras',\n"
                "         head_model_path={work!r} + '/head/head.keras', output_dir={work!r} + '/evaluation',\n"
                "         policy=BlessingPolicy(accuracy_threshold=0.0))",
}
STEPS = list(_STEP_CODE)


_REPORT_PEAK = "\nimport re\nprint('PEAK_KB', re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read())[1])\n"


def _peak_rss_mb(code: str) -> float:
    """Runs Python code in a child process; its peak resident set in MB."""
    completed = subprocess.run([sys.executable, "-c", code + _REPORT_PEAK], capture_output=True, text=True,
                               env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}, check=False)
    if completed.returncode != 0:
        raise RuntimeError(f"step failed in the memory benchmark:\n{completed.stderr[-2000:]}")
    [peak_kb] = [line.split()[1] for line in completed.stdout.splitlines() if line.startswith("PEAK_KB ")]
    return int(peak_kb) / 1024


def peak_rss_per_step(tree: pathlib.Path, work: pathlib.Path, image_size: int, weights: str) -> dict[str, float]:
    """Peak RSS in MB of each step, run one after the other on `tree`."""
    work.mkdir(parents=True, exist_ok=True)
    return {step: _peak_rss_mb(code.format(tree=str(tree), work=str(work), size=image_size, weights=weights))
            for step, code in _STEP_CODE.items()}
