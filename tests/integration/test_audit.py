"""The data audit on real photos and the real MobileNet: planted label flips rank near the top of the
likely-mislabelled list, and a re-encoded copy is found as a near duplicate."""

import csv
import io
import shutil

import numpy as np
import pytest
from PIL import Image

from components.audit import core as audit_core
from components.common.config.base_network_spec import BaseNetworkSpec
from components.extract_features import core as extract_core
from components.ingest import core as ingest_core
from components.preprocess import core as preprocess_core

FLIPPED = 4  # 2% of the 200 photos


# Average pooling gives 256 features, used as they are; flattening gives 12,544, which the audit
# projects on principal components fitted on a sample (fewer photos here than components asked).
@pytest.mark.parametrize("pooling", ["avg", "flatten"])
def test_planted_label_flips_and_a_copy_are_found(shared_fixtures, tmp_path, pooling):
    tree = tmp_path / "tree"
    shutil.copytree(shared_fixtures / "cats_dogs", tree)
    rng = np.random.default_rng(7)
    flipped = []
    for kind, other in (("cats", "dogs"), ("dogs", "cats")):
        for photo in rng.choice(sorted((tree / kind).glob("*.jpg")), FLIPPED // 2, replace=False):
            shutil.move(photo, tree / other / photo.name)
            flipped.append(photo.name)
    # A re-encoded copy of one photo, under another name in the same class.
    original = sorted((tree / "dogs").glob("dog.1*.jpg"))[0]
    copy = io.BytesIO()
    Image.open(original).convert("RGB").save(copy, format="JPEG", quality=40)
    (tree / "dogs" / "copy_of_a_dog.jpg").write_bytes(copy.getvalue())

    ingest_core.run(source=str(tree), output_dir=str(tmp_path / "raw"))
    preprocess_core.run(raw_dir=str(tmp_path / "raw"), output_dir=str(tmp_path / "examples"), image_size=224)
    spec = BaseNetworkSpec(base_model="mobilenet", alpha=0.25, image_size=224, pooling=pooling,
                           base_weights=str(shared_fixtures / "mobilenet_2_5_224_tf_no_top.h5"))
    extract_core.run(examples_dir=str(tmp_path / "examples"), features_dir=str(tmp_path / "features"),
                     base_model_dir=str(tmp_path / "base"), spec=spec)

    audit = audit_core.run(features_dir=str(tmp_path / "features"), examples_dir=str(tmp_path / "examples"),
                           output_dir=str(tmp_path / "audit"), top=20)

    # The CSV's label issues: most planted flips within the first twice-as-many entries.
    with open(tmp_path / "audit" / "audit_issues.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    issues = [row["origin"].rsplit("/", 1)[-1] for row in rows if row["kind"] == "label_issue"]
    assert len([name for name in flipped if name in issues[:2 * FLIPPED]]) >= 3, (flipped, issues)
    assert audit["issues_file"]["label_issues"] == len(issues)
    first_issue = rows[0]
    assert first_issue["suggested"] != first_issue["label"] and len(first_issue["digest"]) == 64
    kinds = [row["kind"] for row in rows]
    assert kinds == sorted(kinds, key=["label_issue", "outlier", "near_duplicate"].index)
    assert {(row["origin"].rsplit("/", 1)[-1], row["matches"].rsplit("/", 1)[-1]) for row in rows
            if row["kind"] == "near_duplicate"} & {(original.name, "copy_of_a_dog.jpg"),
                                                   ("copy_of_a_dog.jpg", original.name)}

    ranked = [entry["origin"].rsplit("/", 1)[-1] for entry in audit["mislabeled"]]
    found = [name for name in flipped if name in ranked[:10]]
    assert len(found) >= 3, (flipped, ranked)  # most planted flips in the top 10 of 201 photos
    first = audit["mislabeled"][ranked.index(found[0])]
    assert first["flagged"] and first["suggested"] != first["label"] and first["thumbnail"]
    pairs = {frozenset((pair["origin"].rsplit("/", 1)[-1], pair["matches"].rsplit("/", 1)[-1]))
             for pair in audit["near_duplicates"]}
    assert frozenset((original.name, "copy_of_a_dog.jpg")) in pairs
    assert audit["balance"]["counts"]["train"] and audit["balance"]["train_largest_to_smallest"] >= 1
    assert len(audit["outliers"]) == 20 and audit["outliers"][0]["score"] >= audit["outliers"][-1]["score"]
    assert audit["images"] == sum(sum(c.values()) for c in audit["balance"]["counts"].values())
