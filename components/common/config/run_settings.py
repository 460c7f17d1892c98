"""What a run reads, where its model goes and what it reuses: the knobs around the model itself."""

from dataclasses import dataclass

from components.common.config.knobs import knob

PROJECT = "headstart"


@dataclass(frozen=True)
class RunSettings:
    """The pipeline's knobs that are not about the model itself; each field's help says what it does.

    The base network's, the splits', the head's, fine-tuning's and the blessing's knobs live with
    those parts.
    """

    source: str = knob("demo:digits", "the labelled images: a class-per-folder tree, a CSV manifest (uri,label), "
                       "tfds:NAME or demo:digits, on this machine or at gs://")
    exclude: str = knob("", "a CSV of images to leave out at ingest, in the data audit's format (its "
                        "audit_issues.csv, with only the rows to act on kept); a local path or gs:// URI")
    relabel: str = knob("", "a CSV of images to give another label at ingest, in the data audit's format: each "
                        "kept row's image gets the label in its 'suggested' column; a local path or gs:// URI")
    beam_args: tuple[str, ...] = knob((), "flags passed to preprocessing's Beam runner (DirectRunner unless they say "
                                      "otherwise), e.g. --direct_num_workers=2")
    compact_examples: bool = knob(False, "preprocess keeps each image encoded, as its source file, instead of its "
                                  "decoded pixels, and the steps that need pixels decode it again with the same "
                                  "function: photos take less disk, and each pass over them more CPU "
                                  "(docs/performance.md)")
    measure_transfer_lift: bool = knob(False, "also train the head on features of the same base with random "
                                       "weights, and report both test accuracies")
    serving_root: str = knob("serving", "where blessed models are pushed, as <serving_root>/<model_name>/<version>/")
    model_name: str = knob(PROJECT, "the model's name under the serving root")
    audit_top: int = knob(20, "entries in each of the data audit's lists: likely mislabelled images, near "
                          "duplicates and outliers")
    edge_export: bool = knob(True, "also put TFLite models in each pushed version: float16, and full int8 "
                             "calibrated on training images; each only if it passes its parity check on the "
                             "test split")
    cache_root: str = knob("", "where steps keep their results for reuse, keyed by content, and extraction its "
                           "feature store; empty for no cache")
    use_cache: bool = knob(True, "reuse a step's stored result when its inputs, parameters and code are unchanged "
                           "(results are stored either way)")

    def __post_init__(self):
        if not self.source:
            raise ValueError("source must not be empty")
        if self.audit_top < 1:
            raise ValueError(f"audit_top must be at least 1, got {self.audit_top}")
        if not self.model_name or "/" in self.model_name or self.model_name.startswith("."):
            raise ValueError(f"model_name must be a plain directory name, got {self.model_name!r}")
