"""Where and how the compiled pipeline's steps run on a cluster.

That is their images, GPUs, CPU, memory and retries, and the Kubernetes settings (volumes, GPU node
placement, secrets) a GKE or EKS cluster needs.

kfp.local ignores resources and images (it runs each step in this Python environment); a KFP
cluster or Vertex AI reads them from the compiled pipeline. The Kubernetes settings go through
kfp-kubernetes, the KFP SDK's own extension, into the pipeline's Kubernetes platform spec.
"""

import os
from dataclasses import dataclass, field

from components.common.config.requested_gpus import GPUS_ENV
from components.container_image import IMAGE

IMAGE_ENV = "HEADSTART_IMAGE"
GPU_IMAGE_ENV = "HEADSTART_GPU_IMAGE"
# The steps that run the network: the only ones a GPU speeds up.
GPU_STEPS = ("extract-features", "train-head", "fine-tune")
# Steps that read or write remote storage (a bucket, a Beam runner): retried with backoff.
NETWORK_STEPS = ("ingest", "preprocess", "push")
# Kubernetes' extended resource name for NVIDIA GPUs (the device plugin's), the KFP default.
KUBERNETES_GPU = "nvidia.com/gpu"
# Vertex AI Pipelines' accelerator types (its `accelerator_type` enum), in its own spelling.
VERTEX_ACCELERATORS = (
    "NVIDIA_TESLA_T4", "NVIDIA_TESLA_V100", "NVIDIA_TESLA_P100", "NVIDIA_TESLA_P4", "NVIDIA_TESLA_A100",
    "NVIDIA_A100_80GB", "NVIDIA_L4", "NVIDIA_H100_80GB", "NVIDIA_H100_MEGA_80GB", "NVIDIA_H200_141GB",
    "NVIDIA_B200", "TPU_V2", "TPU_V3", "TPU_V5_LITEPOD",
)
DEFAULT_VERTEX_ACCELERATOR = "NVIDIA_TESLA_T4"
# Where a PersistentVolumeClaim named for the step cache is mounted in every step.
CACHE_MOUNT_PATH = "/mnt/headstart-cache"
# Where a secret holding a Google service-account key is mounted: google-auth reads a key from a
# file named by GOOGLE_APPLICATION_CREDENTIALS, not from an environment variable's value.
GCP_KEY_MOUNT_PATH = "/var/secrets/google"


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
    "audit-data": StepResources("2", "4G"),
    "evaluate": StepResources("2", "8G"),
    "push": StepResources("1", "4G"),
    # The exit task posts one chat message.
    "notify-run": StepResources("0.25", "512M"),
}


@dataclass(frozen=True)
class VolumeMount:
    """A PersistentVolumeClaim mounted at the same path in every step."""

    claim: str
    mount_path: str

    def __post_init__(self):
        if not self.claim or not self.mount_path.startswith("/"):
            raise ValueError(f"a volume needs a claim name and an absolute mount path, got {self.claim!r} at "
                             f"{self.mount_path!r}")


@dataclass(frozen=True)
class Toleration:
    """A Kubernetes toleration for the GPU steps, e.g. GKE's `nvidia.com/gpu=present:NoSchedule`."""

    key: str
    value: str = ""
    effect: str = "NoSchedule"

    @classmethod
    def parse(cls, text: str) -> "Toleration":
        """`KEY[=VALUE][:EFFECT]`, as kubectl's taint syntax writes it."""
        taint, _, effect = text.partition(":")
        key, _, value = taint.partition("=")
        return cls(key.strip(), value.strip(), effect.strip() or "NoSchedule")

    def __post_init__(self):
        if not self.key:
            raise ValueError("a toleration needs a key, e.g. nvidia.com/gpu=present:NoSchedule")
        if self.effect not in ("NoSchedule", "PreferNoSchedule", "NoExecute"):
            raise ValueError(f"toleration effect must be NoSchedule, PreferNoSchedule or NoExecute, "
                             f"got {self.effect!r}")


@dataclass(frozen=True)
class SecretEnv:
    """One key of a Kubernetes secret, given to every step as an environment variable."""

    env: str
    secret: str
    key: str

    @classmethod
    def parse(cls, text: str) -> "SecretEnv":
        """`ENV=SECRET/KEY`."""
        env, _, reference = text.partition("=")
        secret, _, key = reference.partition("/")
        if not (env and secret and key):
            raise ValueError(f"--env-from-secret {text!r}: expected ENV=SECRET/KEY, e.g. "
                             "GOOGLE_APPLICATION_CREDENTIALS_JSON=gcp-sa/key.json")
        return cls(env, secret, key)


def gpu_variant(image: str) -> str:
    """The GPU image's conventional name: the image's tag with `-gpu` appended."""
    if "@" in image:
        raise ValueError(f"image {image!r} is pinned by digest, so its GPU variant cannot be named from it: "
                         "give --gpu-image")
    last = image.rpartition("/")[2]
    return image + "-gpu" if ":" in last else image + ":latest-gpu"


@dataclass(frozen=True)
class Deployment:
    """What the compiled pipeline asks of the cluster.

    Attributes:
        image: the container image of every step without GPUs (default: $HEADSTART_IMAGE, else
            the project's published image).
        gpu_image: the image of the steps that get GPUs, built from docker/Dockerfile.gpu
            (default: $HEADSTART_GPU_IMAGE, else `image`'s tag with `-gpu` appended).
        gpus: GPUs for each of the GPU_STEPS; 0 for none.
        accelerator: the accelerator type of those GPUs: Kubernetes' resource name on KFP, one of
            VERTEX_ACCELERATORS on Vertex AI.
        resources: CPU and memory per step.
        retries: how often a step that touches the network is retried, with exponential backoff.
        volumes: PersistentVolumeClaims mounted in every step.
        gpu_node_selector: node labels the GPU steps must land on, e.g.
            (("cloud.google.com/gke-accelerator", "nvidia-tesla-t4"),).
        gpu_tolerations: taints of the GPU nodes the GPU steps tolerate.
        secret_env: environment variables every step takes from Kubernetes secrets.
        gcp_key_secret: (secret, key) of a Google service-account key, for clusters without
            Workload Identity (EKS, AKS, on premises): mounted in every step and named by
            GOOGLE_APPLICATION_CREDENTIALS.
        exit_notification: wrap the steps in an exit handler whose task posts the run's outcome to
            the webhook in HEADSTART_NOTIFY_URL (give it with `secret_env`); local runs notify
            from the CLI instead.
    """

    image: str = field(default_factory=lambda: os.environ.get(IMAGE_ENV) or IMAGE)
    gpu_image: str = field(default_factory=lambda: os.environ.get(GPU_IMAGE_ENV, ""))
    gpus: int = 0
    accelerator: str = KUBERNETES_GPU
    resources: dict = field(default_factory=lambda: dict(DEFAULT_RESOURCES))
    retries: int = 3
    volumes: tuple[VolumeMount, ...] = ()
    gpu_node_selector: tuple[tuple[str, str], ...] = ()
    gpu_tolerations: tuple[Toleration, ...] = ()
    secret_env: tuple[SecretEnv, ...] = ()
    gcp_key_secret: tuple[str, str] | None = None
    exit_notification: bool = True

    def __post_init__(self):
        for name in ("image", "gpu_image"):
            value = getattr(self, name)
            if any(c.isspace() for c in value) or (name == "image" and not value):
                raise ValueError(f"{name} must be an image reference without spaces, got {value!r}")
        if self.gpus < 0:
            raise ValueError(f"gpus must be 0 or more, got {self.gpus}")
        if self.retries < 0:
            raise ValueError(f"retries must be 0 or more, got {self.retries}")
        if self.gpus and not self.gpu_image:
            object.__setattr__(self, "gpu_image", gpu_variant(self.image))

    @property
    def kubernetes_settings(self) -> bool:
        """Whether the pipeline carries a Kubernetes platform spec (which Vertex AI does not take)."""
        return bool(self.volumes or self.gpu_node_selector or self.gpu_tolerations or self.secret_env
                    or self.gcp_key_secret)

    @property
    def volume_paths(self) -> tuple[str, ...]:
        """Where the declared volumes appear in every step: the only local paths a cluster step has."""
        return tuple(volume.mount_path for volume in self.volumes)

    def image_for(self, step: str) -> str:
        """The GPU image for a step that runs the network (GPU_STEPS) when there are GPUs, else the plain one."""
        return self.gpu_image if self.gpus and step in GPU_STEPS else self.image

    def for_vertex(self) -> "Deployment":
        """This deployment checked for Vertex AI: its accelerator type in Vertex's names.

        Raises:
            ValueError: an accelerator type Vertex does not have, or Kubernetes settings.
        """
        if self.kubernetes_settings:
            raise ValueError("Vertex AI takes no Kubernetes settings (--cache-pvc, --gpu-node-selector, "
                             "--gpu-toleration, --env-from-secret, --gcp-key-secret): leave them out with --vertex")
        accelerator = DEFAULT_VERTEX_ACCELERATOR if self.accelerator == KUBERNETES_GPU else self.accelerator
        if self.gpus and accelerator not in VERTEX_ACCELERATORS:
            raise ValueError(f"--accelerator {self.accelerator!r} is not a Vertex AI accelerator type; one of: "
                             f"{', '.join(VERTEX_ACCELERATORS)}")
        return Deployment(image=self.image, gpu_image=self.gpu_image, gpus=self.gpus, accelerator=accelerator,
                          resources=self.resources, retries=self.retries, exit_notification=self.exit_notification)

    def apply(self, step: str, task) -> None:
        """Sets the image, resources, GPUs, retries and Kubernetes settings of one pipeline task."""
        task.container_spec.image = self.image_for(step)
        wanted = self.resources[step]
        task.set_cpu_request(wanted.cpu).set_cpu_limit(wanted.cpu)
        task.set_memory_request(wanted.memory).set_memory_limit(wanted.memory)
        gpu_step = self.gpus and step in GPU_STEPS
        if gpu_step:
            task.set_accelerator_type(self.accelerator).set_accelerator_limit(self.gpus)
            task.set_env_variable(GPUS_ENV, str(self.gpus))
        if self.retries and step in NETWORK_STEPS:
            task.set_retry(num_retries=self.retries, backoff_duration="30s", backoff_factor=2.0,
                           backoff_max_duration="600s")
        # The steps key their own cache by content (cache_root); KFP's cache keys on URIs and
        # strings, and would reuse an evaluation made against an older champion, or a push.
        task.set_caching_options(False)
        if self.kubernetes_settings:
            self._apply_kubernetes(task, bool(gpu_step))

    def _apply_kubernetes(self, task, gpu_step: bool) -> None:
        from kfp import kubernetes

        for volume in self.volumes:
            kubernetes.mount_pvc(task, pvc_name=volume.claim, mount_path=volume.mount_path)
        for secret in self.secret_env:
            kubernetes.use_secret_as_env(task, secret_name=secret.secret, secret_key_to_env={secret.key: secret.env})
        if self.gcp_key_secret:
            secret, key = self.gcp_key_secret
            kubernetes.use_secret_as_volume(task, secret_name=secret, mount_path=GCP_KEY_MOUNT_PATH)
            task.set_env_variable("GOOGLE_APPLICATION_CREDENTIALS", f"{GCP_KEY_MOUNT_PATH}/{key}")
        if gpu_step:
            for label, value in self.gpu_node_selector:
                kubernetes.add_node_selector(task, label_key=label, label_value=value)
            for toleration in self.gpu_tolerations:
                kubernetes.add_toleration(task, key=toleration.key, operator="Equal" if toleration.value else "Exists",
                                          value=toleration.value or None, effect=toleration.effect)
