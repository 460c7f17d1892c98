"""The `headstart` command: run the pipeline locally, compile it, predict with a pushed model."""

import argparse
import difflib
import logging
import os
import sys
from typing import Sequence

from components.common.config.run_settings import PROJECT, RunSettings
from components.common.runtime.logs import import_tensorflow_quietly, quiet_tensorflow
from components.common.storage.step_cache import check_cache_root
from pipeline.cli.demo import DEMO_HELP, demo_base_ready, demo_defaults, uses_demo_base
from pipeline.cli.run_options import add_knob_options, chosen, config_from_args
from pipeline.cluster.endpoint_errors import cluster_command

# In the working directory: the checkout's own pipeline/pipeline.yaml is written by `make compile`.
DEFAULT_YAML = "pipeline.yaml"
DEFAULT_PIPELINE_ROOT = "runs"
COLD_STEPS_HELP = ("start each step in a fresh Python process, as a pod does, instead of forking it from one "
                   "that has already imported TensorFlow (forking spares each step that import)")


def _add_run_parser(commands) -> None:
    run = commands.add_parser(
        "run", help="run the whole pipeline on this machine (kfp.local)",
        description="Compile the pipeline and run every step on this machine through kfp.local. "
        "With no --source, runs the built-in offline demo (digits). Every pipeline parameter is an option "
        "of the same name.",
    )
    add_knob_options(run.add_argument_group("pipeline parameters"), DEMO_HELP)
    run.add_argument("--pipeline-root", default=DEFAULT_PIPELINE_ROOT,
                     help="where each run's artifacts and log go (default: %(default)s)")
    run.add_argument("--containers", action="store_true",
                     help="run each step in the container image (kfp.local's DockerRunner; podman's Docker API "
                     "where no Docker engine runs; build the image with `make image` first)")
    run.add_argument("--isolated", action="store_true",
                     help="with --containers, run each step as a cluster pod would: its own artifacts the only "
                     "mounted paths, non-root, under its CPU and memory limits; every other parameter must be a "
                     "gs:// URI (see `make rehearse`)")
    run.add_argument("--image", help="the image for --containers (default: $HEADSTART_IMAGE, else the project's)")
    run.add_argument("--summary", help="also write the run summary as JSON to this path")
    run.add_argument("--notify", metavar="URL",
                     help="post a Slack-compatible JSON message to this webhook when the run succeeds or fails "
                     "(retried with backoff; a webhook that stays down never fails the run)")
    run.add_argument("--verbose", action="store_true", help="show every step's full output")
    run.add_argument("--cold-steps", action="store_true", help=COLD_STEPS_HELP)


def _add_audit_parser(commands) -> None:
    audit = commands.add_parser(
        "audit", help="audit the data alone: likely mislabelled images, near duplicates, outliers, balance",
        description="Run ingest, preprocess and feature extraction on this machine, then the data audit, and "
        "print its findings; no head is trained. The options are `run`'s; those of later steps are ignored.",
    )
    add_knob_options(audit.add_argument_group("pipeline parameters"), DEMO_HELP)
    audit.add_argument("--pipeline-root", default=DEFAULT_PIPELINE_ROOT,
                       help="where each run's artifacts and log go (default: %(default)s)")
    audit.add_argument("--summary", help="also write the run summary, with the audit's first entries, as JSON here")
    audit.add_argument("--verbose", action="store_true", help="show every step's full output")
    audit.add_argument("--cold-steps", action="store_true", help=COLD_STEPS_HELP)
    # `run`'s options an audit does not take, so the shared code reads them alike.
    audit.set_defaults(notify=None, isolated=False, containers=False)


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


SCHEDULE_ACTIONS = ("list", "pause", "resume", "update", "delete")


def _add_cluster_parsers(commands) -> None:
    submit = commands.add_parser(
        "submit", help="start a run on a Kubeflow Pipelines endpoint",
        description="Compile the pipeline with the image and GPU settings and start one run on a KFP endpoint.",
    )
    schedule = commands.add_parser(
        "schedule", help="schedule recurring retraining on a Kubeflow Pipelines endpoint, and manage schedules",
        description="Without an action, create a recurring run: at most one run at a time, missed runs are not "
                    "caught up. `list` shows the recurring runs; `pause`, `resume` and `delete` take one's ID; "
                    "`update ID` replaces it with one made from the options given (KFP has no update: the new "
                    "schedule is created first, then the old one deleted).",
    )
    schedule.add_argument("action", nargs="?", choices=SCHEDULE_ACTIONS,
                          help="what to do with the schedules (default: create one)")
    schedule.add_argument("schedule_id", nargs="?", metavar="ID",
                          help="the recurring run's ID, for pause, resume, update and delete (see `list`)")
    for parser, when in ((submit, "required unless --vertex"), (schedule, "required")):
        parser.add_argument("--host", help=f"the KFP API endpoint, e.g. http://localhost:8080 ({when})")
        parser.add_argument("--pipeline-root", help="where the run's artifacts go, e.g. gs://bucket/headstart "
                            "(default: the cluster's)")
        parser.add_argument("--experiment", default=PROJECT, help="experiment name (default: %(default)s)")
        parser.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                            help="a pipeline parameter, e.g. --param source=gs://bucket/photos --param epochs=30; "
                            "source, base files, serving_root and cache_root must be gs:// URIs (or on --cache-pvc's "
                            "volume): a pod sees nothing of this machine")
        _add_deployment_args(parser)
    submit.add_argument("--run-name", help="the run's display name (default: KFP's)")
    submit.add_argument("--vertex", metavar="PROJECT/REGION",
                        help="submit to Vertex AI Pipelines in this project and region instead of --host "
                        "(needs google-cloud-aiplatform and a gs:// --pipeline-root)")
    schedule.add_argument("--cron", help='when to run, five cron fields: "0 3 * * 1" is Mondays at 03:00 '
                          "(required to create or update)")
    schedule.add_argument("--name", default="headstart-retraining", help="the schedule's name (default: %(default)s)")
    runs = commands.add_parser("runs", help="list the runs on a Kubeflow Pipelines endpoint")
    runs.add_argument("--host", required=True, help="the KFP API endpoint")
    runs.add_argument("--limit", type=int, default=20, help="how many of the newest runs (default: %(default)s)")


class _Parser(argparse.ArgumentParser):
    """A parser that takes options only as spelled, and names the nearest ones for a misspelling.

    argparse would take `--epoch 5` as `--epochs 5`, and report `--base-modle` with the top-level
    usage; here each subcommand refuses an unknown option itself, with its own usage.
    """

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def parse_known_args(self, args=None, namespace=None):
        namespace, extras = super().parse_known_args(args, namespace)
        unknown = [extra for extra in extras if extra.startswith("-")]
        if unknown and self._subparsers is None:
            known = [option for action in self._actions for option in action.option_strings]
            named = []
            for option in unknown:
                nearest = difflib.get_close_matches(option.split("=", 1)[0], known, n=2, cutoff=0.6)
                named.append(option + (f" (did you mean {' or '.join(nearest)}?)" if nearest else ""))
            self.error("unrecognized arguments: " + ", ".join(named))
        return namespace, extras


def build_parser() -> argparse.ArgumentParser:
    """The `headstart` command line: one subcommand per thing it does."""
    parser = _Parser(
        prog=PROJECT,
        description="Transfer-learning image classification pipeline (Kubeflow Pipelines v2).",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    _add_run_parser(commands)
    _add_audit_parser(commands)
    compile_parser = commands.add_parser("compile", help="write the pipeline's KFP IR YAML")
    compile_parser.add_argument("--output", default=DEFAULT_YAML, help="where to write it (default: %(default)s)")
    _add_deployment_args(compile_parser)
    _add_cluster_parsers(commands)
    predict = commands.add_parser("predict", help="classify images with a pushed model")
    predict.add_argument("--model", required=True,
                         help="a pushed version directory, or the model directory (its newest version)")
    predict.add_argument("--tflite", choices=("float16", "int8"),
                         help="use the version's TFLite model of that kind instead of its SavedModel")
    predict.add_argument("--explain", action="store_true",
                         help="also write each image's Grad-CAM overlay (its predicted class) beside it, as "
                         "NAME.gradcam.png")
    predict.add_argument("images", nargs="+", metavar="IMAGE", help="image files (JPEG, PNG, GIF, BMP, WebP)")
    _add_serving_parsers(commands)
    return parser


def _add_serving_parsers(commands) -> None:
    """`serve` and `label`: the pushed models served here, and the labels that name their versions."""
    serve = commands.add_parser(
        "serve", help="serve the newest pushed version over TF Serving's REST API",
        description="Serve <serving-root>/<model-name>/<newest version>/ at /v1/models/<model-name>, "
        "TF Serving's REST API; a newly pushed version is picked up without a restart.",
    )
    _add_served_model_args(serve)
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    serve.add_argument("--port", type=int, default=8501, help="port to listen on (default: %(default)s)")
    _add_batching_options(serve.add_argument_group("server-side batching (TF Serving's names)"))
    label = commands.add_parser(
        "label", help="point a version label (stable, canary) at a pushed version, or list the labels",
        description="Set, remove or list a model's version labels. They are written as TF Serving reads them, "
        "in <serving-root>/<model-name>/models.config (pass it to TF Serving as --model_config_file); "
        "`headstart serve` answers /v1/models/NAME/labels/LABEL:predict from the same file.",
    )
    label.add_argument("label", nargs="?", help="the label, such as stable or canary (none: list the labels)")
    label.add_argument("version", nargs="?", type=int, help="the pushed version the label names")
    label.add_argument("--remove", action="store_true", help="remove the label instead")
    _add_served_model_args(label)


def _add_served_model_args(parser) -> None:
    """Which model in which serving root: `serve` and `label` name it alike."""
    parser.add_argument("--serving-root", default=RunSettings.serving_root,
                        help="the serving root (default: %(default)s)")
    parser.add_argument("--model-name", default=RunSettings.model_name,
                        help="the model's name (default: %(default)s)")


def _add_batching_options(group) -> None:
    from pipeline.serving import batching

    least = {"batch_timeout_micros": 0}
    for name, text in batching.BATCHING_HELP.items():
        group.add_argument("--" + name.replace("_", "-"), dest=name, type=_at_least(least.get(name, 1)),
                           default=getattr(batching, name.upper()), help=text + " (default: %(default)s)")


def _at_least(least: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < least:
            raise argparse.ArgumentTypeError(f"must be at least {least}, got {value}")
        return value

    parse.__name__ = f"whole number of at least {least}"
    return parse


def _missing_inputs(config) -> list[str]:
    """What the run would read from this machine that is not there, as messages naming the parameter."""
    from components.ingest.sources import local_source_problem

    source_problem = local_source_problem(config.source)
    edit_files = [f"{name} {path!r} does not exist" for name, path in (("exclude", config.exclude),
                                                                       ("relabel", config.relabel))
                  if path and not path.startswith("gs://") and not os.path.isfile(path)]
    return ([source_problem] if source_problem else []) + edit_files + config.base_network_spec().missing_files()


def _config_from_args(args):
    """The validated configuration of `headstart run`: the demo's defaults made and applied explicitly."""
    defaults = None
    if uses_demo_base(chosen(args, "source"), args.base_model):
        if not demo_base_ready(args.pipeline_root):
            print("Pretraining the demo base network on digits 0-4 (once) ...", flush=True)
            # The only TensorFlow this process needs: the steps import their own.
            import_tensorflow_quietly(os.path.join(args.pipeline_root, "logs", "headstart.log"))
        defaults = demo_defaults(args.pipeline_root)
    return config_from_args(args, defaults)


def _check_isolated_args(args) -> None:
    """What --isolated needs before anything is prepared: containers, and no demo base made here."""
    if not args.containers:
        raise ValueError("--isolated runs each step in a container: add --containers")
    if uses_demo_base(chosen(args, "source"), args.base_model):
        raise ValueError("base_model: the demo's base network would be a file on this machine, which an isolated "
                         "step cannot see; upload it and pass --base-model gs://... (`make rehearse` does both)")


def _print_summary(summary: dict) -> None:
    from pipeline.local.summary import summary_lines

    print("\n" + "\n".join(summary_lines(summary)))


def _checked_config(args):
    """The run's config from the options, with every check a run makes before it starts.

    Raises:
        ValueError: a parameter is invalid or names something that cannot be reached.
    """
    isolated = args.isolated
    if args.notify:
        from pipeline.reporting.notify import check_webhook_url

        check_webhook_url(args.notify)
    if isolated:
        _check_isolated_args(args)
    config = _config_from_args(args)
    missing = _missing_inputs(config)
    if missing:
        raise ValueError("; ".join(missing))
    if isolated:
        from pipeline.cluster.cluster_paths import check_cluster_paths

        check_cluster_paths(config.to_arguments())
    check_cache_root(config.cache_root)
    return config


def _run(args) -> int:
    os.makedirs(os.path.join(args.pipeline_root, "logs"), exist_ok=True)
    quiet_tensorflow()
    try:
        config = _checked_config(args)
    except ValueError as error:
        print(f"headstart {args.command}: invalid parameter: {error}", file=sys.stderr)
        return 2
    print(f"Running the pipeline on {config.source} with base {os.path.basename(config.base_model)} "
          f"({config.image_size}x{config.image_size})", flush=True)
    try:
        outcome = _run_steps(args, config)
    except BaseException as error:
        _notify(args, config, {"run_id": None, "log": None}, succeeded=False, error=f"{type(error).__name__}: {error}")
        raise
    if outcome is None:
        return 2
    _print_summary(outcome.summary)
    if args.summary:
        from components.common.storage import atomic_files

        atomic_files.write_json(args.summary, outcome.summary)
        print(f"  summary: {os.path.abspath(args.summary)}")
    if args.command == "run":  # the page lists model runs; an audit trains none
        _update_runs_page(args, config, outcome)
    _notify(args, config, outcome.summary, succeeded=outcome.succeeded, error=outcome.error)
    if not outcome.succeeded:
        print(f"\nheadstart {args.command} failed: {outcome.error}\nThe whole output is in {outcome.log_path}",
              file=sys.stderr)
        return 1
    return 0


def _run_steps(args, config):
    """Runs the pipeline here, or each step in its container; the outcome, or None if no engine runs."""
    from pipeline.local.local_run import run_locally

    if args.command == "audit":
        return run_locally(config, args.pipeline_root, verbose=args.verbose, audit_only=True,
                           cold_steps=args.cold_steps)
    if args.containers:
        from pipeline.definition.deployment import Deployment
        from pipeline.local.containers import ContainerEngineError, container_engine

        image = Deployment(**({"image": args.image} if args.image else {})).image
        try:
            with container_engine() as engine:
                print(f"Each step runs in {image} ({engine})", flush=True)
                outcome = run_locally(config, args.pipeline_root, verbose=args.verbose, image=image,
                                      isolated=args.isolated)
        except ContainerEngineError as error:
            print(f"headstart run --containers: {error}", file=sys.stderr)
            return None
        return outcome
    return run_locally(config, args.pipeline_root, verbose=args.verbose, cold_steps=args.cold_steps)


def _update_runs_page(args, config, outcome) -> None:
    """Records the run and rewrites `<pipeline-root>/index.html`; a failure there only warns."""
    from pipeline.reporting import runs_page

    try:
        runs_page.record_run(args.pipeline_root, outcome.summary, succeeded=outcome.succeeded,
                             source=config.source, base=os.path.basename(config.base_model),
                             serving_root=config.serving_root, model_name=config.model_name,
                             error=outcome.error)
        print(f"  runs page: {os.path.abspath(runs_page.write_index(args.pipeline_root))}")
    except OSError as error:
        print(f"headstart run: warning: the runs page was not updated: {error}", file=sys.stderr)


def _notify(args, config, summary: dict, *, succeeded: bool, error: str | None) -> None:
    """Posts the run's notification when --notify asks for one; says whether it was delivered."""
    if not args.notify:
        return
    from pipeline.reporting import notify

    message = notify.run_message(summary, succeeded=succeeded, error=error, source=config.source,
                                 base=os.path.basename(config.base_model))
    if notify.post(args.notify, message):
        print(f"  notified: {notify.redacted(args.notify)}")
    else:
        print(f"headstart run: warning: the notification to {notify.redacted(args.notify)} was not delivered",
              file=sys.stderr)


def _deployment(args):
    """The deployment the compile, submit and schedule options describe.

    Raises:
        ValueError: an option that is malformed, naming it.
    """
    from pipeline.definition.deployment import CACHE_MOUNT_PATH, Deployment, SecretEnv, Toleration, VolumeMount

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
    from pipeline.cluster.submission import compile_pipeline

    try:
        deployment = _deployment(args)
    except ValueError as error:
        print(f"headstart compile: {error}", file=sys.stderr)
        return 2
    compile_pipeline(deployment, args.output)
    gpus = f", {deployment.gpus} GPUs and image {deployment.gpu_image} for the GPU steps" if deployment.gpus else ""
    print(f"wrote {args.output} (image {deployment.image}{gpus})")
    return 0


def _schedule_action_problem(args) -> str | None:
    """Why a `schedule` action cannot run as asked, or None."""
    if not args.host:
        return "--host is required (the KFP API endpoint)"
    needs_id = args.action in ("pause", "resume", "update", "delete")
    if needs_id and not args.schedule_id:
        return f"{args.action} needs the schedule's ID (see `headstart schedule list --host ...`)"
    if not needs_id and args.schedule_id:
        return f"unexpected {args.schedule_id!r}: only pause, resume, update and delete take an ID"
    if args.action in (None, "update") and not args.cron:
        return "--cron is required to " + ("update a schedule" if args.action else "create a schedule")
    return None


def _manage_schedules(args) -> int:
    """`headstart schedule list | pause ID | resume ID | delete ID`."""
    from pipeline.cluster import submission

    problem = _schedule_action_problem(args)
    if problem:
        print(f"headstart schedule: {problem}", file=sys.stderr)
        return 2
    if args.action == "list":
        schedules = submission.list_schedules(args.host)
        print(f"{'SCHEDULE ID':<38} {'STATUS':<9} {'CRON':<16} {'CREATED':<26} NAME")
        for entry in schedules:
            print(f"{entry['schedule_id']:<38} {entry['status']:<9} {entry['cron']:<16} {entry['created_at']:<26} "
                  f"{entry['name']}")
        if not schedules:
            print("(no schedules)")
        return 0
    {"pause": submission.pause_schedule, "resume": submission.resume_schedule,
     "delete": submission.delete_schedule}[args.action](args.host, args.schedule_id)
    done = {"pause": "paused", "resume": "resumed", "delete": "deleted"}[args.action]
    print(f"{done} schedule {args.schedule_id} on {args.host}")
    return 0


def _cluster_settings(args):
    """(deployment, parameters, Vertex PROJECT/REGION or None) of a submit or schedule, checked.

    Raises:
        ValueError: a bad option or parameter, or a path no pod can reach, named.
    """
    from pipeline.cluster import submission

    deployment, params = _deployment(args), submission.parse_params(args.param)
    if args.command == "schedule":
        problem = _schedule_action_problem(args)
        if problem:
            raise ValueError(problem)
        submission.kfp_cron(args.cron)
    vertex = getattr(args, "vertex", None)
    if vertex and (vertex.count("/") != 1 or not args.pipeline_root):
        raise ValueError("--vertex takes PROJECT/REGION and needs --pipeline-root gs://...")
    if not vertex and not args.host:
        raise ValueError("--host is required (the KFP API endpoint), or --vertex PROJECT/REGION")
    if vertex:
        deployment = deployment.for_vertex()
    params = submission.with_cluster_defaults(params, deployment)
    submission.check_reachable(params, deployment, args.pipeline_root)
    return deployment, params, vertex


@cluster_command
def _submit_or_schedule(args) -> int:
    from pipeline.cluster import submission

    if args.command == "schedule" and args.action not in (None, "update"):
        return _manage_schedules(args)
    try:
        deployment, params, vertex = _cluster_settings(args)
    except ValueError as error:
        print(f"headstart {args.command}: {error}", file=sys.stderr)
        return 2
    if not params.get("cache_root"):
        print(f"headstart {args.command}: note: no cache_root, so every step runs every time; "
              "--param cache_root=gs://BUCKET/headstart-cache (or --cache-pvc) reuses unchanged steps", file=sys.stderr)
    if args.command == "schedule":
        return _create_or_update_schedule(args, deployment, params)
    if vertex:
        project, region = vertex.split("/")
        try:
            job = submission.submit_to_vertex(project, region, deployment, params, args.pipeline_root, args.run_name)
        except (RuntimeError, ValueError) as error:
            print(f"headstart submit: {error}", file=sys.stderr)
            return 2
        print(f"submitted {job} to Vertex AI ({region}, image {deployment.image})")
    else:
        run_id = submission.submit(args.host, deployment, params, args.experiment, args.run_name, args.pipeline_root)
        print(f"submitted run {run_id} to {args.host} (experiment {args.experiment}, image {deployment.image})")
    return 0


def _create_or_update_schedule(args, deployment, params) -> int:
    from pipeline.cluster import submission

    settings = f"cron {args.cron!r}, one run at a time, no catch-up"
    if args.action == "update":
        schedule_id = submission.update_schedule(args.host, args.schedule_id, deployment, params, args.cron,
                                              args.experiment, args.name, args.pipeline_root)
        print(f"updated: {args.schedule_id} replaced by {args.name} ({schedule_id}) on {args.host}: {settings}")
    else:
        schedule_id = submission.schedule(args.host, deployment, params, args.cron, args.experiment, args.name,
                                       args.pipeline_root)
        print(f"scheduled {args.name} ({schedule_id}) on {args.host}: {settings}")
    return 0


@cluster_command
def _runs(args) -> int:
    from pipeline.cluster import submission

    runs = submission.list_runs(args.host, args.limit)
    print(f"{'RUN ID':<38} {'STATE':<10} {'CREATED':<26} NAME")
    for run in runs:
        print(f"{run['run_id']:<38} {run['state']:<10} {run['created_at']:<26} {run['name']}")
    if not runs:
        print("(no runs)")
    return 0


def _predict(args) -> int:
    import_tensorflow_quietly(os.devnull)
    from pipeline.serving import predict

    try:
        model_dir = predict.resolve_model_dir(args.model)
        classify = predict.tflite_classifier(model_dir, args.tflite) if args.tflite else \
            predict.saved_model_classifier(model_dir)
        explain = predict.explanation_writer(model_dir) if args.explain else None
    except ValueError as error:
        print(f"headstart predict: {error}", file=sys.stderr)
        return 2
    failures = 0
    for prediction in predict.predict_files(classify, args.images, explain):
        if prediction.error is not None:
            failures += 1
            print(f"{prediction.path}: error: {prediction.error}")
        else:
            explained = f", Grad-CAM: {prediction.explanation}" if prediction.explanation else ""
            print(f"{prediction.path}: {prediction.class_name} ({prediction.probability:.4f}){explained}")
    return 1 if failures else 0


def _label(args) -> int:
    from pipeline.serving import version_labels

    if args.label is not None and args.remove == (args.version is not None):
        print("headstart label: error: give a label and a version, or a label and --remove", file=sys.stderr)
        return 2
    try:
        labels = version_labels.read_labels(args.serving_root, args.model_name) if args.label is None else \
            version_labels.set_label(args.serving_root, args.model_name, args.label, args.version)
    except ValueError as error:
        print(f"headstart label: error: {error}", file=sys.stderr)
        return 2
    shown = ", ".join(f"{name} -> version {version}" for name, version in labels.items()) or "no labels"
    print(f"{args.model_name}: {shown} ({version_labels.config_path(args.serving_root, args.model_name)})")
    return 0


def _serve(args) -> int:
    import_tensorflow_quietly(os.devnull)
    from components.common.contract.serving_layout import latest_version_dir
    from pipeline.serving.serve import serve

    newest = latest_version_dir(args.serving_root, args.model_name)
    print(f"Serving {args.model_name} from {os.path.abspath(args.serving_root)} "
          f"({'newest version now ' + os.path.basename(newest) if newest else 'no version yet'}) at "
          f"http://{args.host}:{args.port}/v1/models/{args.model_name}", flush=True)
    from pipeline.serving.batching import BATCHING_HELP

    serve(args.serving_root, args.model_name, args.host, args.port,
          **{name: getattr(args, name) for name in BATCHING_HELP})
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the `headstart` subcommand `argv` names; returns its exit status."""
    args = build_parser().parse_args(argv)
    quiet_tensorflow()
    # Libraries imported here (Beam, TensorFlow) warn about optional extras a person cannot act
    # on; the steps' own logs go to the run's log file and its progress view.
    logging.basicConfig(level=logging.ERROR, format="%(message)s")
    handlers = {"run": _run, "audit": _run, "compile": _compile, "predict": _predict, "serve": _serve,
                "label": _label, "submit": _submit_or_schedule, "schedule": _submit_or_schedule, "runs": _runs}
    return handlers[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
