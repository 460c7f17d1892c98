"""The `headstart` command: run the pipeline locally, compile it, predict with a pushed model."""

import argparse
import functools
import json
import logging
import os
import sys
from typing import Callable, Collection, Sequence

from components.common.logs import import_tensorflow_quietly, quiet_tensorflow
from components.common.step_cache import check_cache_root

DEFAULT_YAML = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pipeline.yaml")
DEFAULT_PIPELINE_ROOT = "runs"


def _add_run_parser(commands) -> None:
    run = commands.add_parser(
        "run", help="run the whole pipeline on this machine (kfp.local)",
        description="Compile the pipeline and run every step on this machine through kfp.local. "
        "With no --source, runs the built-in offline demo (digits).",
    )
    run.add_argument("--source", default="demo:digits",
                     help="class-per-folder tree, CSV manifest (uri,label), tfds:NAME or demo:digits "
                     "(default: %(default)s)")
    run.add_argument("--base-model", help="keras.applications name (mobilenet, mobilenet_v2, vgg16, "
                     "resnet50, efficientnet_b0) or a .keras file (default: mobilenet; the demo's own "
                     "pretrained base for demo:digits)")
    run.add_argument("--alpha", type=float, default=1.0, help="MobileNet width multiplier (default: 1.0)")
    run.add_argument("--base-weights", default="imagenet",
                     help="imagenet, none, or a path to a weights file (default: imagenet)")
    run.add_argument("--image-size", type=int, help="input side in pixels (default: 224; 32 for the demo)")
    run.add_argument("--pooling", choices=["avg", "flatten"], default="avg",
                     help="how the base's feature map becomes a vector (default: avg)")
    run.add_argument("--trust-base-model", action="store_true",
                     help="load a .keras base model without Keras safe mode, so code in its Lambda layers runs: "
                     "only for a file you made or trust")
    run.add_argument("--hidden-units", type=int, nargs="*", default=[128],
                     help="hidden layer sizes of the head (default: 128; none for a logistic head)")
    run.add_argument("--dropout", type=float, default=0.2, help="head dropout (default: 0.2)")
    run.add_argument("--learning-rate", type=float, default=1e-3, help="Adam learning rate (default: 0.001)")
    run.add_argument("--epochs", type=int, help="the most training epochs (default: 20; 60 for the demo)")
    run.add_argument("--batch-size", type=int, default=32, help="batch size (default: 32)")
    run.add_argument("--patience", type=int, help="early-stopping patience (default: 5; 10 for the demo)")
    run.add_argument("--l2", type=float, default=0.0, help="L2 penalty on the head's kernels (default: 0)")
    run.add_argument("--label-smoothing", type=float, default=0.0,
                     help="label smoothing of the head's loss (default: 0)")
    run.add_argument("--class-weights", action="store_true",
                     help="weigh each class by the inverse of its share of the training images (for imbalanced data)")
    run.add_argument("--seed", type=int, default=42, help="random seed of head training (default: 42)")
    run.add_argument("--fine-tune", choices=["auto", "on", "off"], default="auto",
                     help="second phase: unfreeze the top of the base and train end to end on lightly augmented "
                     "images at a low learning rate (default: auto, on when a GPU is found)")
    run.add_argument("--fine-tune-fraction", type=float, default=0.2,
                     help="share of the base's weighted layers, from the top, that fine-tuning trains "
                     "(default: 0.2)")
    run.add_argument("--fine-tune-learning-rate", type=float, default=1e-5,
                     help="fine-tuning learning rate (default: 1e-5)")
    run.add_argument("--fine-tune-epochs", type=int, default=5, help="the most fine-tuning epochs (default: 5)")
    run.add_argument("--transfer-lift", action=argparse.BooleanOptionalAction, default=None,
                     help="also train the head on features of the same base with random weights and report "
                     "both accuracies (default: on for the demo, off otherwise)")
    run.add_argument("--accuracy-threshold", type=float, default=0.8,
                     help="the least test accuracy that blesses the model (default: 0.8)")
    run.add_argument("--auc-threshold", type=float, default=0.0,
                     help="the least test AUC that blesses the model; 0 for none (default: 0)")
    run.add_argument("--champion-tolerance", type=float, default=0.01,
                     help="how much lower than the serving model's accuracy, on this run's test split, "
                     "the new model's may be and still be blessed (default: 0.01)")
    run.add_argument("--serving-root", default="serving",
                     help="where blessed models are pushed, <root>/<model-name>/<version>/ (default: serving)")
    run.add_argument("--model-name", default="headstart", help="model name under the serving root")
    run.add_argument("--pipeline-root", default=DEFAULT_PIPELINE_ROOT,
                     help="where each run's artifacts and log go (default: %(default)s)")
    run.add_argument("--cache-dir",
                     help="where steps keep results for reuse, keyed by content (default: <pipeline-root>/cache)")
    run.add_argument("--no-cache", action="store_true",
                     help="run every step even if its inputs, parameters and code are unchanged (results are "
                     "still stored for the next run)")
    run.add_argument("--beam-arg", action="append", default=[], dest="beam_args",
                     help="a flag passed to the Beam runner, e.g. --beam-arg=--direct_num_workers=2")
    run.add_argument("--containers", action="store_true",
                     help="run each step in the container image (kfp.local's DockerRunner; podman's Docker API "
                     "where no Docker engine runs; build the image with `make image` first)")
    run.add_argument("--isolated", action="store_true",
                     help="with --containers, run each step as a cluster pod would: its own artifacts the only "
                     "mounted paths, non-root, under its CPU and memory limits; every other parameter must be a "
                     "gs:// URI (see `make rehearse`)")
    run.add_argument("--image", help="the image for --containers (default: $HEADSTART_IMAGE, else the project's)")
    run.add_argument("--summary", help="also write the run summary as JSON to this path")
    run.add_argument("--verbose", action="store_true", help="show every step's full output")


def _add_deployment_args(parser) -> None:
    parser.add_argument("--image", help="the container image of every step without GPUs (default: $HEADSTART_IMAGE, "
                        "else the project's image, ghcr.io/headstart-ml/headstart)")
    parser.add_argument("--gpu-image", help="the image of the steps that get GPUs, built by `make image-gpu` "
                        "(default: $HEADSTART_GPU_IMAGE, else the image's tag with -gpu appended)")
    parser.add_argument("--gpus", type=int, default=0,
                        help="GPUs for each of extract-features, train-head and fine-tune (default: 0)")
    parser.add_argument("--accelerator",
                        help="the accelerator type of those GPUs (default: nvidia.com/gpu on KFP, NVIDIA_TESLA_T4 "
                        "on Vertex AI, which takes its own names, e.g. NVIDIA_L4)")
    kubernetes = parser.add_argument_group("Kubernetes settings (KFP on GKE, EKS, ...; through kfp-kubernetes)")
    kubernetes.add_argument("--cache-pvc", metavar="CLAIM",
                            help="keep the step cache on this PersistentVolumeClaim, mounted in every step at "
                            "/mnt/headstart-cache (the cache_root default then)")
    kubernetes.add_argument("--gpu-node-selector", action="append", default=[], metavar="LABEL=VALUE",
                            help="a node label the GPU steps must land on, e.g. "
                            "cloud.google.com/gke-accelerator=nvidia-tesla-t4")
    kubernetes.add_argument("--gpu-toleration", action="append", default=[], metavar="KEY[=VALUE][:EFFECT]",
                            help="a GPU node taint the GPU steps tolerate, e.g. nvidia.com/gpu=present:NoSchedule")
    kubernetes.add_argument("--env-from-secret", action="append", default=[], metavar="ENV=SECRET/KEY",
                            help="give every step the environment variable ENV from key KEY of Kubernetes secret "
                            "SECRET, e.g. HTTPS_PROXY=egress/proxy-url")
    kubernetes.add_argument("--gcp-key-secret", metavar="SECRET[/KEY]",
                            help="a Google service-account key in this Kubernetes secret (key: KEY, default "
                            "key.json), mounted in every step as GOOGLE_APPLICATION_CREDENTIALS; for clusters "
                            "without Workload Identity")


def _add_cluster_parsers(commands) -> None:
    submit = commands.add_parser(
        "submit", help="start a run on a Kubeflow Pipelines endpoint",
        description="Compile the pipeline with the image and GPU settings and start one run on a KFP endpoint.",
    )
    schedule = commands.add_parser(
        "schedule", help="schedule recurring retraining on a Kubeflow Pipelines endpoint",
        description="Create a recurring run: at most one run at a time, missed runs are not caught up.",
    )
    for parser in (submit, schedule):
        parser.add_argument("--host", help="the KFP API endpoint, e.g. http://localhost:8080 (required but with "
                            "--vertex)")
        parser.add_argument("--pipeline-root", help="where the run's artifacts go, e.g. gs://bucket/headstart "
                            "(default: the cluster's)")
        parser.add_argument("--experiment", default="headstart", help="experiment name (default: %(default)s)")
        parser.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                            help="a pipeline parameter, e.g. --param source=gs://bucket/photos --param epochs=30; "
                            "source, base files, serving_root and cache_root must be gs:// URIs (or on --cache-pvc's "
                            "volume): a pod sees nothing of this machine")
        _add_deployment_args(parser)
    submit.add_argument("--run-name", help="the run's display name (default: KFP's)")
    submit.add_argument("--vertex", metavar="PROJECT/REGION",
                        help="submit to Vertex AI Pipelines in this project and region instead of --host "
                        "(needs google-cloud-aiplatform and a gs:// --pipeline-root)")
    schedule.add_argument("--cron", required=True,
                          help='when to run, five cron fields: "0 3 * * 1" is Mondays at 03:00')
    schedule.add_argument("--name", default="headstart-retraining", help="the schedule's name (default: %(default)s)")
    runs = commands.add_parser("runs", help="list the runs on a Kubeflow Pipelines endpoint")
    runs.add_argument("--host", required=True, help="the KFP API endpoint")
    runs.add_argument("--limit", type=int, default=20, help="how many of the newest runs (default: %(default)s)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="headstart",
        description="Transfer-learning image classification pipeline (Kubeflow Pipelines v2).",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    _add_run_parser(commands)
    compile_parser = commands.add_parser("compile", help="write the pipeline's KFP IR YAML")
    compile_parser.add_argument("--output", default=DEFAULT_YAML, help="where to write it (default: %(default)s)")
    _add_deployment_args(compile_parser)
    _add_cluster_parsers(commands)
    predict = commands.add_parser("predict", help="classify images with a pushed model")
    predict.add_argument("--model", required=True,
                         help="a pushed version directory, or the model directory (its newest version)")
    predict.add_argument("images", nargs="+", metavar="IMAGE", help="image files (JPEG, PNG, GIF, BMP, WebP)")
    serve = commands.add_parser(
        "serve", help="serve the newest pushed version over TF Serving's REST API",
        description="Serve <serving-root>/<model-name>/<newest version>/ at /v1/models/<model-name>, "
        "TF Serving's REST API; a newly pushed version is picked up without a restart.",
    )
    serve.add_argument("--serving-root", default="serving", help="the serving root (default: %(default)s)")
    serve.add_argument("--model-name", default="headstart", help="the model's name (default: %(default)s)")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    serve.add_argument("--port", type=int, default=8501, help="port to listen on (default: %(default)s)")
    return parser


def _absolute_unless_remote(path: str) -> str:
    """Local directories become absolute (steps run elsewhere); gs:// URIs stay as they are."""
    return path if path.startswith("gs://") else os.path.abspath(path)


# The --base-weights values that name no file (BaseNetworkSpec.weights_file).
def _absolute_if_path(value: str, keywords: Collection[str] = ()) -> str:
    """Local paths become absolute (steps may run elsewhere); keywords, names and URIs stay as they are.

    Args:
        value: an option's value.
        keywords: the option's values that are never paths, even where a file of that name is in the
            working directory.
    """
    if value in keywords or value.startswith("gs://"):
        return value
    return os.path.abspath(value) if os.path.exists(value) else value


def _missing_inputs(config) -> list[str]:
    """What the run would read from this machine that is not there, as messages naming the parameter."""
    from components.ingest.sources import local_source_problem

    source_problem = local_source_problem(config.source)
    return ([source_problem] if source_problem else []) + config.base_network_spec().missing_files()


def _config_from_args(args):
    """The validated pipeline configuration for `headstart run`'s arguments.

    Options left unset take the pipeline's defaults, except for the built-in demo, which brings
    its own pretrained base network, image size and a longer head training.
    """
    from components.common.base_network import APPLICATIONS, WEIGHTS_KEYWORDS
    from components.ingest.demo_digits import DEMO_IMAGE_SIZE
    from components.ingest.sources import is_local
    from pipeline.config import PipelineConfig
    from pipeline.demo import DEMO_EPOCHS, DEMO_PATIENCE, DEMO_SOURCE, prepare_demo_base

    defaults = PipelineConfig.__dataclass_fields__
    unset = {name: defaults[name].default for name in ("base_model", "image_size", "epochs", "patience")}
    unset["transfer_lift"] = defaults["measure_transfer_lift"].default
    if args.source == DEMO_SOURCE and args.base_model is None:
        print("Pretraining the demo base network on digits 0-4 (once) ...", flush=True)
        unset = {
            "base_model": prepare_demo_base(os.path.join(args.pipeline_root, "demo")),
            "image_size": DEMO_IMAGE_SIZE,
            "epochs": DEMO_EPOCHS,
            "patience": DEMO_PATIENCE,
            "transfer_lift": True,
        }
    chosen = {name: getattr(args, name) if getattr(args, name) is not None else default
              for name, default in unset.items()}
    return PipelineConfig(
        source=_absolute_if_path(args.source) if is_local(args.source) else args.source,
        base_model=_absolute_if_path(chosen["base_model"], keywords=APPLICATIONS),
        base_weights=_absolute_if_path(args.base_weights, keywords=WEIGHTS_KEYWORDS),
        alpha=args.alpha,
        image_size=chosen["image_size"],
        pooling=args.pooling,
        trust_base_model=args.trust_base_model,
        beam_args=tuple(args.beam_args),
        hidden_units=tuple(args.hidden_units),
        dropout=args.dropout,
        learning_rate=args.learning_rate,
        epochs=chosen["epochs"],
        batch_size=args.batch_size,
        patience=chosen["patience"],
        seed=args.seed,
        l2=args.l2,
        label_smoothing=args.label_smoothing,
        class_weights=args.class_weights,
        measure_transfer_lift=chosen["transfer_lift"],
        fine_tune_mode=args.fine_tune,
        fine_tune_fraction=args.fine_tune_fraction,
        fine_tune_learning_rate=args.fine_tune_learning_rate,
        fine_tune_epochs=args.fine_tune_epochs,
        accuracy_threshold=args.accuracy_threshold,
        auc_threshold=args.auc_threshold,
        champion_tolerance=args.champion_tolerance,
        serving_root=_absolute_unless_remote(args.serving_root),
        model_name=args.model_name,
        cache_root=_absolute_unless_remote(args.cache_dir or os.path.join(args.pipeline_root, "cache")),
        use_cache=not args.no_cache,
    )


def _check_isolated_args(args) -> None:
    """What --isolated needs before anything is prepared: containers, and no demo base made here."""
    from pipeline.demo import DEMO_SOURCE

    if not args.containers:
        raise ValueError("--isolated runs each step in a container: add --containers")
    if args.source == DEMO_SOURCE and args.base_model is None:
        raise ValueError("base_model: the demo's base network would be a file on this machine, which an isolated "
                         "step cannot see; upload it and pass --base-model gs://... (`make rehearse` does both)")


def _print_summary(summary: dict) -> None:
    from pipeline.summary import summary_lines

    print("\n" + "\n".join(summary_lines(summary)))


def _run(args) -> int:
    os.makedirs(os.path.join(args.pipeline_root, "logs"), exist_ok=True)
    import_tensorflow_quietly(os.path.join(args.pipeline_root, "logs", "headstart.log"))
    from pipeline.local_run import run_locally

    try:
        if args.isolated:
            _check_isolated_args(args)
        config = _config_from_args(args)
        missing = _missing_inputs(config)
        if missing:
            raise ValueError("; ".join(missing))
        if args.isolated:
            from pipeline.cluster_paths import check_cluster_paths

            check_cluster_paths(config.to_arguments())
        check_cache_root(config.cache_root)
    except ValueError as error:
        print(f"headstart run: invalid parameter: {error}", file=sys.stderr)
        return 2
    print(f"Running the pipeline on {config.source} with base {os.path.basename(config.base_model)} "
          f"({config.image_size}x{config.image_size})", flush=True)
    if args.containers:
        from pipeline.containers import ContainerEngineError, container_engine
        from pipeline.deployment import Deployment

        image = Deployment(**({"image": args.image} if args.image else {})).image
        try:
            with container_engine() as engine:
                print(f"Each step runs in {image} ({engine})", flush=True)
                outcome = run_locally(config, args.pipeline_root, verbose=args.verbose, image=image,
                                      isolated=args.isolated)
        except ContainerEngineError as error:
            print(f"headstart run --containers: {error}", file=sys.stderr)
            return 2
    else:
        outcome = run_locally(config, args.pipeline_root, verbose=args.verbose)
    _print_summary(outcome.summary)
    if args.summary:
        from components.common import storage

        storage.write_json(args.summary, outcome.summary)
        print(f"  summary: {os.path.abspath(args.summary)}")
    if not outcome.succeeded:
        print(f"\nheadstart run failed: {outcome.error}\nThe whole output is in {outcome.log_path}", file=sys.stderr)
        return 1
    return 0


def _deployment(args):
    """The deployment the compile, submit and schedule options describe.

    Raises:
        ValueError: an option that is malformed, naming it.
    """
    from pipeline.deployment import CACHE_MOUNT_PATH, Deployment, SecretEnv, Toleration, VolumeMount

    chosen = {name: value for name, value in (("image", args.image), ("gpu_image", args.gpu_image),
                                              ("accelerator", args.accelerator)) if value}
    selector = []
    for pair in args.gpu_node_selector:
        label, sep, value = pair.partition("=")
        if not (label and sep):
            raise ValueError(f"--gpu-node-selector {pair!r}: expected LABEL=VALUE")
        selector.append((label, value))
    return Deployment(
        **chosen, gpus=args.gpus,
        volumes=(VolumeMount(args.cache_pvc, CACHE_MOUNT_PATH),) if args.cache_pvc else (),
        gpu_node_selector=tuple(selector),
        gpu_tolerations=tuple(Toleration.parse(text) for text in args.gpu_toleration),
        secret_env=tuple(SecretEnv.parse(text) for text in args.env_from_secret),
        gcp_key_secret=_secret_and_key(args.gcp_key_secret) if args.gcp_key_secret else None,
    )


def _secret_and_key(text: str) -> tuple[str, str]:
    secret, _, key = text.partition("/")
    if not secret:
        raise ValueError(f"--gcp-key-secret {text!r}: expected SECRET or SECRET/KEY")
    return secret, key or "key.json"


def _compile(args) -> int:
    from pipeline.cluster import compile_pipeline

    try:
        deployment = _deployment(args)
    except ValueError as error:
        print(f"headstart compile: {error}", file=sys.stderr)
        return 2
    compile_pipeline(deployment, args.output)
    gpus = f", {deployment.gpus} GPUs and image {deployment.gpu_image} for the GPU steps" if deployment.gpus else ""
    print(f"wrote {args.output} (image {deployment.image}{gpus})")
    return 0


def _endpoint_failure(error: Exception, endpoint: str) -> str | None:
    """What went wrong between this machine and `endpoint`, in one line; None for an error of another kind.

    Covers what `kfp.Client` raises: urllib3's errors when nothing answers (refused, unresolvable,
    cut off), the TimeoutError its health check gives up with, and the generated client's
    ApiException when the endpoint answers with an HTTP error status.
    """
    import urllib3
    from kfp_server_api.exceptions import ApiException

    if isinstance(error, ApiException) and not error.status:
        # Status 0: no answer came, e.g. the TLS handshake failed; the reason says why.
        return f"cannot reach {endpoint}: {error.reason}"
    if isinstance(error, ApiException):
        try:
            message = str(json.loads(error.body or "").get("message") or "").strip()
        except (TypeError, ValueError, AttributeError):
            message = ""  # not KFP's JSON error body: the status says enough
        answer = f"HTTP {error.status} {error.reason or ''}".rstrip()
        return f"{endpoint} answered {answer}" + (f": {message.splitlines()[0][:300]}" if message else "")
    if isinstance(error, urllib3.exceptions.HTTPError):
        # MaxRetryError wraps the last try's error, which wraps the socket's: its strerror
        # ("Connection refused") says it in two words where urllib3's own text repeats the URL.
        cause = getattr(error, "reason", None) or error
        while not (isinstance(cause, OSError) and cause.strerror) and (cause.__cause__ or cause.__context__):
            cause = cause.__cause__ or cause.__context__
        reason = cause.strerror if isinstance(cause, OSError) and cause.strerror else str(cause)
    elif isinstance(error, (TimeoutError, ConnectionError)):
        reason = str(error) or type(error).__name__
    else:
        try:
            from requests.exceptions import ConnectionError as RequestsConnectionError
        except ImportError:
            return None
        if not isinstance(error, RequestsConnectionError):
            return None
        reason = str(error)
    return f"cannot reach {endpoint}: {reason}"


class _NoTracebacks(logging.Filter):
    """Keeps a log record's message and drops its traceback.

    `kfp.Client` logs each failed health check with `logging.exception`; the retries are worth
    seeing, their tracebacks are not.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        record.exc_info, record.exc_text = None, None
        return True


def _cluster_command(handler: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Wraps a cluster command's handler so that endpoint failures exit 2 with one line, no traceback.

    Failures are an endpoint that cannot be reached or that answers with an HTTP error. The line
    names the command, the endpoint and the reason, e.g. `headstart runs: cannot reach the KFP API
    at http://127.0.0.1:9: Connection refused`; any other error propagates as it is.
    """
    @functools.wraps(handler)
    def wrapped(args: argparse.Namespace) -> int:
        no_tracebacks = _NoTracebacks()
        root = logging.getLogger()
        root.addFilter(no_tracebacks)
        try:
            return handler(args)
        except Exception as error:
            endpoint = (f"the KFP API at {args.host}" if args.host
                        else f"Vertex AI in {getattr(args, 'vertex', None) or 'its project'}")
            failure = _endpoint_failure(error, endpoint)
            if failure is None:
                raise
            print(f"headstart {args.command}: {failure}", file=sys.stderr)
            return 2
        finally:
            root.removeFilter(no_tracebacks)

    return wrapped


@_cluster_command
def _submit_or_schedule(args) -> int:
    # The typed config that checks --param imports TensorFlow, whose start-up lines mean nothing here.
    import_tensorflow_quietly(os.devnull)
    from pipeline import cluster

    try:
        deployment, params = _deployment(args), cluster.parse_params(args.param)
        if args.command == "schedule":
            cluster.kfp_cron(args.cron)
        vertex = getattr(args, "vertex", None)
        if vertex and (vertex.count("/") != 1 or not args.pipeline_root):
            raise ValueError("--vertex takes PROJECT/REGION and needs --pipeline-root gs://...")
        if not vertex and not args.host:
            raise ValueError("--host is required (the KFP API endpoint), or --vertex PROJECT/REGION")
        if vertex:
            deployment = deployment.for_vertex()
        params = cluster.with_cluster_defaults(params, deployment)
        cluster.check_reachable(params, deployment, args.pipeline_root)
    except ValueError as error:
        print(f"headstart {args.command}: {error}", file=sys.stderr)
        return 2
    if not params.get("cache_root"):
        print(f"headstart {args.command}: note: no cache_root, so every step runs every time; "
              "--param cache_root=gs://BUCKET/headstart-cache (or --cache-pvc) reuses unchanged steps", file=sys.stderr)
    if args.command == "submit" and vertex:
        project, region = vertex.split("/")
        try:
            job = cluster.submit_to_vertex(project, region, deployment, params, args.pipeline_root, args.run_name)
        except (RuntimeError, ValueError) as error:
            print(f"headstart submit: {error}", file=sys.stderr)
            return 2
        print(f"submitted {job} to Vertex AI ({region}, image {deployment.image})")
    elif args.command == "submit":
        run_id = cluster.submit(args.host, deployment, params, args.experiment, args.run_name, args.pipeline_root)
        print(f"submitted run {run_id} to {args.host} (experiment {args.experiment}, image {deployment.image})")
    else:
        schedule_id = cluster.schedule(args.host, deployment, params, args.cron, args.experiment, args.name,
                                       args.pipeline_root)
        print(f"scheduled {args.name} ({schedule_id}) on {args.host}: cron {args.cron!r}, one run at a time, "
              "no catch-up")
    return 0


@_cluster_command
def _runs(args) -> int:
    from pipeline import cluster

    runs = cluster.list_runs(args.host, args.limit)
    print(f"{'RUN ID':<38} {'STATE':<10} {'CREATED':<26} NAME")
    for run in runs:
        print(f"{run['run_id']:<38} {run['state']:<10} {run['created_at']:<26} {run['name']}")
    if not runs:
        print("(no runs)")
    return 0


def _predict(args) -> int:
    import_tensorflow_quietly(os.devnull)
    from pipeline.predict import predict_files, resolve_model_dir

    try:
        model_dir = resolve_model_dir(args.model)
    except ValueError as error:
        print(f"headstart predict: {error}", file=sys.stderr)
        return 2
    failures = 0
    for prediction in predict_files(model_dir, args.images):
        if prediction.error is not None:
            failures += 1
            print(f"{prediction.path}: error: {prediction.error}")
        else:
            print(f"{prediction.path}: {prediction.class_name} ({prediction.probability:.4f})")
    return 1 if failures else 0


def _serve(args) -> int:
    import_tensorflow_quietly(os.devnull)
    from components.common.serving_layout import latest_version_dir
    from pipeline.serve import serve

    newest = latest_version_dir(args.serving_root, args.model_name)
    print(f"Serving {args.model_name} from {os.path.abspath(args.serving_root)} "
          f"({'newest version now ' + os.path.basename(newest) if newest else 'no version yet'}) at "
          f"http://{args.host}:{args.port}/v1/models/{args.model_name}", flush=True)
    serve(args.serving_root, args.model_name, args.host, args.port)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    quiet_tensorflow()
    # Libraries imported here (Beam, TensorFlow) warn about optional extras a person cannot act
    # on; the steps' own logs go to the run's log file and its progress view.
    logging.basicConfig(level=logging.ERROR, format="%(message)s")
    handlers = {"run": _run, "compile": _compile, "predict": _predict, "serve": _serve,
                "submit": _submit_or_schedule, "schedule": _submit_or_schedule, "runs": _runs}
    return handlers[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
