"""Where and how the compiled pipeline's steps run on a cluster: the image, GPUs, CPU, memory, retries.

kfp.local ignores resources and images (it runs each step in this Python environment); a KFP
cluster or Vertex AI reads them from the compiled pipeline.
"""

import os
from dataclasses import dataclass, field

from components.image import IMAGE

IMAGE_ENV = "HEADSTART_IMAGE"
# The steps that train: the only ones a GPU speeds up.
GPU_STEPS = ("train-head", "fine-tune")
# Steps that read or write remote storage (a bucket, a Beam runner): retried with backoff.
NETWORK_STEPS = ("ingest", "preprocess", "push")


@dataclass(frozen=True)
class StepResources:
    """CPU (cores) and memory (e.g. "8G") requested and limited for one step."""

    cpu: str
    memory: str


DEFAULT_RESOURCES = {
    "ingest": StepResources("1", "2G"),
    "preprocess": StepResources("2", "4G"),
    "extract-features": StepResources("4", "8G"),
    "train-head": StepResources("2", "8G"),
    "fine-tune": StepResources("4", "16G"),
    "transfer-lift": StepResources("4", "8G"),
    "evaluate": StepResources("2", "8G"),
    "push": StepResources("1", "4G"),
}


@dataclass(frozen=True)
class Deployment:
    """What the compiled pipeline asks of the cluster.

    Attributes:
        image: the one container image every step runs in (default: $HEADSTART_IMAGE, else the
            project's published image).
        gpus: GPUs for the train and fine-tune steps; 0 for none.
        accelerator: the accelerator type those GPUs are (KFP's `set_accelerator_type`).
        resources: CPU and memory per step.
        retries: how often a step that touches the network is retried, with exponential backoff.
    """

    image: str = field(default_factory=lambda: os.environ.get(IMAGE_ENV) or IMAGE)
    gpus: int = 0
    accelerator: str = "nvidia.com/gpu"
    resources: dict = field(default_factory=lambda: dict(DEFAULT_RESOURCES))
    retries: int = 3

    def __post_init__(self):
        if not self.image or any(c.isspace() for c in self.image):
            raise ValueError(f"image must be an image reference without spaces, got {self.image!r}")
        if self.gpus < 0:
            raise ValueError(f"gpus must be 0 or more, got {self.gpus}")
        if self.retries < 0:
            raise ValueError(f"retries must be 0 or more, got {self.retries}")

    def apply(self, step: str, task) -> None:
        """Sets the image, resources, GPUs and retries of one pipeline task."""
        task.container_spec.image = self.image
        wanted = self.resources[step]
        task.set_cpu_request(wanted.cpu).set_cpu_limit(wanted.cpu)
        task.set_memory_request(wanted.memory).set_memory_limit(wanted.memory)
        if self.gpus and step in GPU_STEPS:
            task.set_accelerator_type(self.accelerator).set_accelerator_limit(self.gpus)
        if self.retries and step in NETWORK_STEPS:
            task.set_retry(num_retries=self.retries, backoff_duration="30s", backoff_factor=2.0,
                           backoff_max_duration="600s")
        # The steps key their own cache by content (cache_root); KFP's cache keys on URIs and
        # strings, and would reuse an evaluation made against an older champion, or a push.
        task.set_caching_options(False)
