"""Deployment manifests a platform team can apply for a pushed model, and its model card."""

import datetime
import json

import yaml

TF_SERVING_IMAGE = "tensorflow/serving:2.18.0"
REST_PORT = 8501
GRPC_PORT = 8500


def _resource_name(model_name: str) -> str:
    """Kubernetes names are lowercase DNS labels."""
    cleaned = "".join(c if c.isalnum() else "-" for c in model_name.lower()).strip("-")
    return cleaned or "model"


def kserve_inference_service(model_name: str, storage_uri: str) -> str:
    """A KServe InferenceService with the TensorFlow predictor reading the model's base path."""
    return yaml.safe_dump({
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": _resource_name(model_name)},
        "spec": {"predictor": {"tensorflow": {"storageUri": storage_uri}}},
    }, sort_keys=False)


def tf_serving_deployment(model_name: str, model_base_path: str) -> str:
    """A TF Serving Deployment and Service; TF Serving serves the newest version it finds."""
    name = _resource_name(model_name)
    labels = {"app": name}
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{
                    "name": "tf-serving",
                    "image": TF_SERVING_IMAGE,
                    "args": [f"--model_name={model_name}", f"--model_base_path={model_base_path}",
                             f"--rest_api_port={REST_PORT}", f"--port={GRPC_PORT}"],
                    "ports": [{"containerPort": REST_PORT, "name": "http"},
                              {"containerPort": GRPC_PORT, "name": "grpc"}],
                    "readinessProbe": {"httpGet": {"path": f"/v1/models/{model_name}", "port": REST_PORT}},
                    "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"memory": "2Gi"}},
                }]},
            },
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "labels": labels},
        "spec": {"selector": labels, "ports": [{"name": "http", "port": REST_PORT, "targetPort": REST_PORT},
                                              {"name": "grpc", "port": GRPC_PORT, "targetPort": GRPC_PORT}]},
    }
    return yaml.safe_dump_all([deployment, service], sort_keys=False)


# Characters that Markdown (or the HTML it may hold) would read as syntax in a class name: `|` ends
# a table cell, `*`, `_` and backquotes emphasize or quote, brackets make links, `<` opens a tag.
_MARKDOWN_ESCAPES = {char: "\\" + char for char in "\\`*_[]|#"} | {"<": "&lt;", ">": "&gt;", "&": "&amp;"}


def _markdown_text(text: str) -> str:
    """`text` shown as itself inside a Markdown line or table cell."""
    return "".join(_MARKDOWN_ESCAPES.get(char, char) for char in text)


def _without_host_paths(base_network: dict) -> dict:
    """The base network's description with local file paths cut to their file names.

    A path on the machine that ran the push means nothing where the card is read, and says what
    that machine's directories are called; a gs:// URI is a shared location, so it stays.
    """
    def portable(value):
        if isinstance(value, str) and not value.startswith("gs://") and ("/" in value or "\\" in value):
            return value.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]
        return value

    return {key: portable(value) for key, value in base_network.items()}


def model_card(*, model_name: str, run_id: str, labels: list[str], counts: dict,
               metrics: dict, blessing: dict, base_network: dict, head: dict, edge: dict | None = None) -> str:
    """A model card in Markdown: what the model is, what it was trained on, how well it does."""
    low, high = metrics.get("accuracy_ci95", [float("nan")] * 2)
    shown_labels = [_markdown_text(label) for label in labels]
    rows = "\n".join(
        f"| {split} | " + " | ".join(str(counts.get(split, {}).get(label, 0)) for label in labels) + " |"
        for split in ("train", "eval", "test")
    )
    per_class = "\n".join(
        f"| {_markdown_text(label)} | {v['precision']:.4f} | {v['recall']:.4f} | {v['f1']:.4f} | {v['support']} |"
        for label, v in metrics.get("per_class", {}).items()
    )
    reasons = "\n".join(f"- {reason}" for reason in blessing.get("reasons", [blessing.get("reason", "")]))
    edge_rows = "\n".join(
        f"| {variant} | {check['file'] if check['passed'] else '(left out)'} | {check['bytes'] / 1e6:.2f} MB | "
        f"{check['test_accuracy']:.4f} | {check['reason']} |" for variant, check in (edge or {}).items())
    edge_section = f"""
## Edge models (TFLite)
Input: uint8 pixels [1, S, S, 3] from the same decode and resize as `serving_default` (the int8
model's quantized with its input's scale and zero point, 1 and 0 when calibration spanned 0 to 255);
output: `probabilities` (the int8 model's quantized as uint8, with the output's scale and zero point).

| model | file | size | test accuracy | check |
| --- | --- | --- | --- | --- |
{edge_rows}
""" if edge else ""
    # No version number: a concurrent push may take the one expected; the directory names it.
    return f"""# Model card: {model_name}

Pushed {datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")} by pipeline run `{run_id}`.

An image classifier for {len(labels)} classes ({", ".join(shown_labels)}): a frozen base network turns an
image into features, a small trained head turns features into class probabilities. Send encoded
image bytes (JPEG, PNG, GIF, BMP) to `serving_default`; decoded float images in [0, 255] to
`serving_images`.

## Base network
```
{json.dumps(_without_host_paths(base_network), indent=2)}
```

## Head and training
```
{json.dumps(head, indent=2)}
```

## Data (images per split and class)
| split | {" | ".join(shown_labels)} |
| --- | {" | ".join("---" for _ in labels)} |
{rows}

## Test metrics
- accuracy {metrics.get("accuracy", float("nan")):.4f} (bootstrap 95% interval {low:.4f} to {high:.4f})
- AUC {metrics.get("auc", float("nan")):.4f}, log loss {metrics.get("log_loss", float("nan")):.4f}, \
expected calibration error {metrics.get("ece", float("nan")):.4f}

| class | precision | recall | F1 | test images |
| --- | --- | --- | --- | --- |
{per_class}

## Why it was pushed
{reasons}
{edge_section}"""
