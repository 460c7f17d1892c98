"""The ingest step's cache keys on the content of --exclude and --relabel files, not on their names."""

import os
from dataclasses import dataclass, field

from components.common.storage import atomic_files
from components.ingest.executor import execute


@dataclass
class Artifact:
    """The two fields of a KFP artifact the step uses."""

    path: str
    metadata: dict = field(default_factory=dict)


def ingest(image_tree, tmp_path, run, *, relabel=""):
    """Runs the ingest step; returns (how many images it relabelled, whether it ran rather than reused)."""
    output = Artifact(str(tmp_path / f"run{run}" / "raw_examples"))
    execute(source=str(image_tree), exclude="", relabel=relabel, cache_root=str(tmp_path / "cache"),
            use_cache=True, raw_examples=output)
    manifest = atomic_files.read_json(os.path.join(output.path, "manifest.json"))
    decision = atomic_files.read_json(os.path.join(output.path, ".headstart-cache.json"))
    return len(manifest["relabelled"]), not decision["reused"]


def test_a_relabel_file_is_applied_and_an_edit_of_it_is_never_served_from_the_cache(image_tree, tmp_path):
    assert ingest(image_tree, tmp_path, 1) == (0, True)
    assert ingest(image_tree, tmp_path, 2) == (0, False)  # unchanged: reused
    relabel = tmp_path / "relabel.csv"
    relabel.write_text(f"origin,suggested\n{image_tree / 'red' / 'red_0.jpg'},blue\n")
    assert ingest(image_tree, tmp_path, 3, relabel=str(relabel)) == (1, True)
    assert ingest(image_tree, tmp_path, 4, relabel=str(relabel)) == (1, False)
    # The same file name, another edit: the step runs again.
    relabel.write_text(f"origin,suggested\n{image_tree / 'red' / 'red_0.jpg'},blue\n"
                       f"{image_tree / 'red' / 'red_1.png'},blue\n")
    assert ingest(image_tree, tmp_path, 5, relabel=str(relabel)) == (2, True)
