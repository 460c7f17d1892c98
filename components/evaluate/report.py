"""The evaluation report: one self-contained HTML page a person would rather look at than read.

Confusion matrix, ROC curve, training curves, reliability diagram, the worst mistakes and a
sample of correct predictions as thumbnails with their true and predicted labels and their
Grad-CAM overlays, the transfer lift, the head search's trials where there was one, and the
blessing's reasons.
Figures are PNGs embedded as data URIs, so the page is one file the KFP UI can show.
"""

import base64
import html
import io

import matplotlib

matplotlib.use("Agg")  # no display: render to memory
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from components.evaluate.pushed_mark import pushed_mark  # noqa: E402

WORST_MISTAKES = 12
CORRECT_SAMPLE = 6
THUMBNAIL = 96
# Beyond this many classes a full confusion matrix is no figure a person can read (and at a
# thousand its canvas passes matplotlib's pixel limit): the report lists the top confusions, and
# its per-class tables the classes that need a look.
MATRIX_CLASSES = 20
TOP_CONFUSIONS = 20


def _figure_uri(figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(figure)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def top_confusions(matrix: list[list[int]], limit: int = TOP_CONFUSIONS) -> list[tuple[int, int, int]]:
    """(true class, predicted class, images) of the most frequent mistakes, most frequent first."""
    values = np.array(matrix)
    np.fill_diagonal(values, 0)
    flat = np.argsort(-values, axis=None, kind="stable")[:limit]
    return [(int(row), int(column), int(values[row, column]))
            for row, column in zip(*np.unravel_index(flat, values.shape)) if values[row, column]]


def _confusions_table(matrix: list[list[int]], labels: list[str]) -> str:
    escape = html.escape
    support = np.array(matrix).sum(axis=1)
    rows = "".join(f"<tr><td>{escape(labels[true])}</td><td>{escape(labels[predicted])}</td><td>{count}</td>"
                   f"<td>{count / support[true]:.0%}</td></tr>" for true, predicted, count in top_confusions(matrix))
    return (f"<h2>Top confusions</h2><p>{len(labels)} classes: too many for a confusion matrix. The most frequent "
            "mistakes on the test split (the whole matrix is in metrics.json):</p>"
            "<table><tr><th>true</th><th>predicted as</th><th>images</th><th>of the true class</th></tr>"
            + (rows or "<tr><td colspan=4>no mistakes</td></tr>") + "</table>")


def _confusion_matrix(matrix: list[list[int]], labels: list[str]) -> str | None:
    if len(labels) > MATRIX_CLASSES:
        return None  # see _confusions_table
    size = max(3.0, 0.6 * len(labels) + 2)
    figure, axes = plt.subplots(figsize=(size, size))
    values = np.array(matrix)
    axes.imshow(values, cmap="Blues")
    axes.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    axes.set_yticks(range(len(labels)), labels)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    for (row, column), count in np.ndenumerate(values):
        axes.text(column, row, str(count), ha="center", va="center",
                  color="white" if count > values.max() / 2 else "black")
    axes.set_title("Confusion matrix (test)")
    return _figure_uri(figure)


def _roc(roc: dict | None, auc: float) -> str | None:
    if not roc:
        return None
    figure, axes = plt.subplots(figsize=(4, 4))
    axes.plot(roc["fpr"], roc["tpr"], label=f"AUC {auc:.3f}")
    axes.plot([0, 1], [0, 1], linestyle="--", color="gray")
    axes.set_xlabel("false positive rate")
    axes.set_ylabel("true positive rate")
    axes.set_title("ROC (test)")
    axes.legend(loc="lower right")
    return _figure_uri(figure)


def _training_curves(history: dict) -> str | None:
    values = history.get("history", {})
    if not values:
        return None
    figure, (loss_axes, accuracy_axes) = plt.subplots(1, 2, figsize=(8, 3.2))
    for key, axes in (("loss", loss_axes), ("accuracy", accuracy_axes)):
        for prefix, label in (("", "train"), ("val_", "eval")):
            if prefix + key in values:
                axes.plot(range(1, len(values[prefix + key]) + 1), values[prefix + key], label=label)
        axes.axvline(history.get("best_epoch", 0), color="gray", linestyle=":", label="kept")
        axes.set_xlabel("epoch")
        axes.set_title(key)
        axes.legend()
    return _figure_uri(figure)


def _reliability(reliability: list[dict], ece: float) -> str:
    figure, axes = plt.subplots(figsize=(4, 4))
    centers = [(b["low"] + b["high"]) / 2 for b in reliability]
    axes.bar(centers, [b["accuracy"] for b in reliability], width=0.09, alpha=0.7, label="accuracy")
    axes.plot([0, 1], [0, 1], linestyle="--", color="gray", label="perfect calibration")
    axes.set_xlabel("confidence")
    axes.set_ylabel("accuracy")
    axes.set_title(f"Reliability (ECE {ece:.3f})")
    axes.legend(loc="upper left")
    return _figure_uri(figure)


def _thumbnail_uri(pixels: np.ndarray) -> str:
    image = Image.fromarray(pixels.astype(np.uint8)).resize((THUMBNAIL, THUMBNAIL))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def correct_sample(label_indices: np.ndarray, probabilities: np.ndarray, limit: int = CORRECT_SAMPLE) -> list[int]:
    """Indices of up to `limit` correctly classified examples, spread evenly over the split's order."""
    correct = np.flatnonzero(probabilities.argmax(axis=1) == label_indices)
    if len(correct) <= limit:
        return correct.tolist()
    return correct[np.linspace(0, len(correct) - 1, limit).round().astype(int)].tolist()


def _figures(images: list[dict], empty: str) -> str:
    """Each image's thumbnail and, when there is one, its Grad-CAM overlay, with its labels."""
    escape = html.escape
    return "".join(
        f'<figure><img src="{_thumbnail_uri(m["pixels"])}" alt="test image">'
        + (f'<img src="{_thumbnail_uri(m["overlay"])}" alt="Grad-CAM">' if "overlay" in m else "")
        + f'<figcaption>true <b>{escape(m["true"])}</b><br>predicted <b>{escape(m["predicted"])}</b> '
        f'({m["confidence"]:.2f})<br><small class=origin>{escape(m["origin"])}</small></figcaption></figure>'
        for m in images
    ) or f"<p>{empty}</p>"


def _audit_entry(entry: dict, caption: str) -> str:
    """One audited image: its thumbnail (and its match's, for a duplicate) over a caption."""
    images = "".join(f'<img src="data:image/png;base64,{entry[key]}" alt="audited image">'
                     for key in ("thumbnail", "matches_thumbnail") if entry.get(key))
    return f"<figure>{images}<figcaption>{caption}</figcaption></figure>"


AUDIT_ADVICE = """<p><b>What to do with these lists.</b> They rank images for a person to look at; they
decide nothing, and clean data gets flagged too (a flag means the classifier's answer disagreed,
often on a hard or ambiguous picture). Work down each list from the top and stop when the images
stop being wrong:</p><ul>
<li><b>Likely mislabelled:</b> where the label is wrong, move the file to its right class folder
(or correct its CSV row); where the picture fits no class, delete it. Then run again.</li>
<li><b>Near duplicates:</b> a copy across splits makes test accuracy a measure of memory (preprocess
already drops such test images); keep one copy.</li>
<li><b>Outliers:</b> check that each belongs to the task at all (a blank frame, a screenshot, a
chart); remove those that do not.</li>
<li><b>Class balance:</b> a class with far fewer images is learnt worst; add images to it, or
turn on class weights (<code>--class-weights</code>).</li></ul>"""


def _audit_section(audit: dict | None) -> str:
    """The report's data audit: likely mislabelled images, near duplicates, outliers and balance."""
    if not audit:
        return "<p>No audit in this run.</p>"
    escape = html.escape
    mislabeled = "".join(_audit_entry(
        e, f"{escape(e['split'])} <b>{escape(e['label'])}</b>, looks like <b>{escape(e['suggested'])}</b><br>"
        f"score {e['score']:.2f}{' (flagged)' if e['flagged'] else ''}<br>"
        f"<small class=origin>{escape(e['origin'])}</small>")
        for e in audit["mislabeled"])
    duplicates = "".join(_audit_entry(
        e, f"{escape(e['split'])} / {escape(e['matches_split'])}, {e['hash_distance']} bits apart<br>"
        f"<small class=origin>{escape(e['origin'])}<br>{escape(e['matches'])}</small>")
        for e in audit["near_duplicates"]) or "<p>None found.</p>"
    outliers = "".join(_audit_entry(
        e, f"{escape(e['split'])} <b>{escape(e['label'])}</b><br>{e['score']:.1f} MADs out<br>"
        f"<small class=origin>{escape(e['origin'])}</small>") for e in audit["outliers"])
    counts = audit["balance"]["counts"]
    train = counts.get("train") or next(iter(counts.values()))
    labels, balance_note = sorted(train, key=train.get), ""
    if len(labels) > MATRIX_CLASSES:
        half = MATRIX_CLASSES // 2
        labels = labels[:half] + labels[-half:]
        balance_note = (f"<p>The {half} smallest and the {half} largest of {len(train)} classes by training "
                        "images (every class is in audit.json).</p>")
    rows = "".join(f"<tr><td>{escape(label)}</td>" + "".join(f"<td>{per_label.get(label, 0)}</td>"
                                                             for per_label in counts.values()) + "</tr>"
                   for label in labels)
    ratio = audit["balance"]["train_largest_to_smallest"]
    return (f"<p>{audit['images']} images; {audit['flagged_mislabeled']} flagged as likely mislabelled "
            "(out-of-fold predictions of a classifier on the features). The lists are ranked, most "
            "suspicious first.</p>" + AUDIT_ADVICE + "<h3>Likely mislabelled</h3>" + mislabeled
            + "<h3>Near duplicates</h3>" + duplicates + "<h3>Outliers, far from every class</h3>" + outliers
            + f"<h3>Class balance</h3>{balance_note}<table><tr><th>class</th>"
            + "".join(f"<th>{escape(split)}</th>" for split in counts) + f"</tr>{rows}</table>"
            + f"<p>Largest to smallest training class: {ratio}.</p>")


EDITS_SHOWN = 200


def _edits_section(edits: dict) -> str:
    """The images a person excluded or relabelled at ingest (--exclude, --relabel), up to EDITS_SHOWN of each."""
    escape = html.escape

    def table(entries: list[dict], columns: tuple[str, ...]) -> str:
        rows = "".join("<tr>" + "".join(f"<td class=origin>{escape(str(entry.get(column, '')))}</td>"
                                        for column in columns) + "</tr>" for entry in entries[:EDITS_SHOWN])
        more = f"<p>and {len(entries) - EDITS_SHOWN} more (edits.json in the examples)</p>" \
            if len(entries) > EDITS_SHOWN else ""
        return ("<table><tr>" + "".join(f"<th>{column}</th>" for column in columns) + f"</tr>{rows}</table>{more}")

    excluded, relabelled = edits["excluded"], edits["relabelled"]
    return (f"<h2>Excluded and relabelled at ingest</h2><p>{len(excluded)} images left out (--exclude) and "
            f"{len(relabelled)} given another label (--relabel), as the run was asked.</p>"
            + (f"<h3>Excluded</h3>{table(excluded, ('origin', 'label'))}" if excluded else "")
            + (f"<h3>Relabelled</h3>{table(relabelled, ('origin', 'label', 'relabelled'))}" if relabelled else ""))


def head_search_section(tuning: dict | None) -> str:
    """The head search's chosen values and its table of trials, best first; empty without a search."""
    if not tuning:
        return ""
    escape = html.escape
    chosen = ", ".join(f"{name} {escape(str(value))}" for name, value in tuning["chosen"].items())
    if not tuning["trials"]:
        return f"<h2>Head search</h2><p>{escape(tuning['stopped'])}; the head trained with {chosen}.</p>"
    columns = list(tuning["trials"][0])
    rows = "".join("<tr>" + "".join(f"<td>{escape(_cell(row[column]))}</td>" for column in columns) + "</tr>"
                   for row in tuning["trials"])
    return (f"<h2>Head search</h2><p>Successive halving over {tuning['candidates']} candidate heads, rungs of "
            f"{', '.join(map(str, tuning['rung_epochs']))} epochs, ranked by eval cross-entropy: "
            f"{tuning['seconds']:.0f} of {tuning['budget_seconds']} s ({escape(tuning['stopped'])}). "
            f"Chosen: <b>{chosen}</b>. Trial 0 is the configured head.</p><table><tr>"
            + "".join(f"<th>{escape(column.replace('_', ' '))}</th>" for column in columns) + f"</tr>{rows}</table>")


def _cell(value) -> str:
    if value is None:
        return "not trained"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def about_table(about: dict, blessing: dict) -> str:
    """The report's head: run, source, base network, key settings and what goes to serving."""
    escape = html.escape
    model = escape(str(about.get("model_name") or "(no model name)"))
    champion = about.get("champion_version")
    if not blessing.get("blessed"):
        pushed = "none: not blessed"
    elif champion is not None:
        pushed = f"push exports it as the next version of {model}, after version {champion}"
    else:
        pushed = f"push exports it as the next version of {model}"
    rows = [("run", about.get("run") or "(not named)"), ("source", about.get("source") or "(not recorded)"),
            ("base network", about.get("base") or "(not recorded)"), *about.get("settings", {}).items()]
    cells = "".join(f"<tr><th>{escape(name)}</th><td class=origin>{escape(str(value))}</td></tr>"
                    for name, value in rows)
    return f'<table class="about">{cells}<tr><th>version pushed</th><td>{pushed_mark(pushed)}</td></tr></table>'


def _per_class_rows(per_class: dict[str, dict]) -> tuple[str, str]:
    """The per-class table's rows, and a note when only the weakest classes are shown."""
    shown, note = list(per_class.items()), ""
    if len(shown) > MATRIX_CLASSES:
        shown = sorted(shown, key=lambda item: item[1]["f1"])[:MATRIX_CLASSES]
        note = (f"<p>The {MATRIX_CLASSES} of {len(per_class)} classes with the lowest F1, lowest first "
                "(every class is in metrics.json).</p>")
    escape = html.escape
    rows = "".join(f"<tr><td>{escape(label)}</td><td>{v['precision']:.3f}</td><td>{v['recall']:.3f}</td>"
                   f"<td>{v['f1']:.3f}</td><td>{v['support']}</td></tr>" for label, v in shown)
    return rows, note


def worst_mistakes(label_indices: np.ndarray, probabilities: np.ndarray, limit: int = WORST_MISTAKES) -> list[int]:
    """Indices of the misclassified examples, most confidently wrong first."""
    predicted = probabilities.argmax(axis=1)
    wrong = np.flatnonzero(predicted != label_indices)
    return wrong[np.argsort(-probabilities[wrong, predicted[wrong]])][:limit].tolist()


def render_report(*, metrics: dict, labels: list[str], history: dict, blessing: dict, lift: dict | None,
                  mistakes: list[dict], correct: list[dict] = (), no_grad_cam: str | None = None,
                  audit: dict | None = None, near_duplicates: int | None = None, about: dict | None = None,
                  edits: dict | None = None) -> str:
    """The report page.

    Args:
        metrics: the test metrics (metrics.classification_metrics).
        labels: class names by index.
        history: the head's history.json.
        blessing: the blessing decision with its reasons and the champion.
        lift: the transfer-lift measurement, or None when it was not measured.
        mistakes: [{"pixels", "true", "predicted", "confidence", "origin", "overlay"}] for the worst
            mistakes; "overlay", the Grad-CAM image, only where there is one.
        correct: the same for a sample of correct predictions.
        no_grad_cam: why there are no Grad-CAM overlays, when there are none.
        audit: the data audit (audit.json), when there is one.
        near_duplicates: test images preprocess dropped as near copies of training images (the
            examples' stats.json); None when not known.
        about: what the report covers, shown at its head (see `about_table`); None for no head.
        edits: the images --exclude and --relabel changed at ingest (`examples_info.edits`).
    """
    escape = html.escape
    low, high = metrics.get("accuracy_wilson95") or metrics["accuracy_ci95"]
    small_test_split = (
        f'<p class="warning"><b>Too few test images to trust this accuracy:</b> {metrics["count"]} images leave it '
        f"anywhere from {low:.4f} to {high:.4f} (95%). Use a larger test split before relying on it; a model "
        "measured on so few cannot replace the one in serving.</p>") if metrics.get("small_test_split") else ""
    figures = [_confusion_matrix(metrics["confusion_matrix"], labels), _roc(metrics["roc"], metrics["auc"]),
               _training_curves(history), _reliability(metrics["reliability"], metrics["ece"])]
    images = "".join(f'<img src="{uri}" alt="figure">' for uri in figures if uri)
    per_class, per_class_note = _per_class_rows(metrics["per_class"])
    if lift and lift.get("measured"):
        lift_html = (
            "<table><tr><th>base network weights</th><th>test accuracy</th></tr>"
            f"<tr><td>pretrained ({escape(str(lift['weights']))})</td><td>{metrics['accuracy']:.4f}</td></tr>"
            f"<tr><td>random (same architecture, same head)</td><td>{lift['random_accuracy']:.4f}</td></tr>"
            f"</table><p>Transfer lift: <b>{metrics['accuracy'] - lift['random_accuracy']:+.4f}</b> accuracy.</p>"
        )
    else:
        lift_html = "<p>Not measured in this run (measure_transfer_lift is off).</p>"
    champion = blessing.get("champion")
    champion_html = (f"<p>Champion: version {champion['version']}, accuracy {champion['accuracy']:.4f} on this "
                     f"run's test split.</p>" if champion else "<p>No comparable champion in serving.</p>")
    reasons = "".join(f"<li>{escape(reason)}</li>" for reason in blessing.get("reasons", []))
    mistake_cells = _figures(mistakes, "No mistakes on the test split.")
    correct_cells = _figures(list(correct), "No correct predictions on the test split.")
    grad_cam_note = (f"<p>No Grad-CAM: {escape(no_grad_cam)}.</p>" if no_grad_cam else
                     "<p>Beside each image, Grad-CAM of its predicted class on the base network's last feature "
                     "map: red is where the base's features drove the prediction most.</p>")
    verdict = "BLESSED" if blessing.get("blessed") else "NOT BLESSED"
    near_duplicates_html = ("" if near_duplicates is None else
                            f"\n<p>{near_duplicates} test images dropped as near-duplicates of training images.</p>")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>headstart evaluation</title>
<style>
body {{ font-family: sans-serif; margin: 2em; max-width: 1100px; }}
img {{ margin: 0.3em; vertical-align: top; }}
table {{ border-collapse: collapse; margin: 0.5em 0; }}
td, th {{ border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }}
figure {{ display: inline-block; margin: 0.3em; font-size: 0.8em; text-align: center; max-width: 16em; }}
.origin {{ overflow-wrap: anywhere; }}
.about th {{ text-align: left; background: #f3f3f3; }}
.about td {{ text-align: left; }}
.verdict {{ font-size: 1.3em; font-weight: bold; }}
.warning {{ background: #fff3cd; border-left: 4px solid #e0a800; padding: 0.5em; }}
</style></head><body>
<h1>Evaluation on the test split</h1>
{about_table(about, blessing) if about else ""}
<p class="verdict">{verdict}</p><ul>{reasons}</ul>{champion_html}
{small_test_split}<p>Accuracy <b>{metrics['accuracy']:.4f}</b> (95% interval {low:.4f} to {high:.4f}) on
{metrics['count']} images; AUC {metrics['auc']:.4f}; log loss {metrics['log_loss']:.4f};
expected calibration error {metrics['ece']:.4f}.</p>{near_duplicates_html}
{head_search_section(history.get("tuning"))}
<h2>Transfer lift</h2>{lift_html}
<h2>Per class</h2>{per_class_note}
<table><tr><th>class</th><th>precision</th><th>recall</th><th>F1</th><th>test images</th></tr>{per_class}</table>
<h2>Figures</h2>{images}
{_confusions_table(metrics["confusion_matrix"], labels) if len(labels) > MATRIX_CLASSES else ""}
<h2>Worst mistakes</h2>{grad_cam_note}{mistake_cells}
<h2>A sample of correct predictions</h2>{correct_cells}
<h2>Data audit</h2>{_audit_section(audit)}
{_edits_section(edits) if edits and (edits["excluded"] or edits["relabelled"]) else ""}
</body></html>
"""
