"""Split assignment: deterministic by digest, with the requested shares."""

import hashlib

import pytest

from components.preprocess.splits import SplitError, SplitPolicy, stratify


def digests(count):
    return [hashlib.sha256(str(i).encode()).hexdigest() for i in range(count)]


def test_default_shares_are_close_to_80_10_10():
    policy = SplitPolicy()
    assigned = [policy.assign(d, "") for d in digests(5000)]
    shares = {split: assigned.count(split) / len(assigned) for split in ("train", "eval", "test")}
    assert shares["train"] == pytest.approx(0.8, abs=0.02)
    assert shares["eval"] == pytest.approx(0.1, abs=0.02)
    assert shares["test"] == pytest.approx(0.1, abs=0.02)


def test_same_digest_same_split():
    policy = SplitPolicy(0.6, 0.2)
    assert [policy.assign(d, "") for d in digests(100)] == [policy.assign(d, "") for d in digests(100)]


def test_explicit_splits_win_and_eval_is_carved_from_train():
    policy = SplitPolicy(explicit_splits=("train", "test"))
    from_train = [policy.assign(d, "train") for d in digests(2000)]
    assert {policy.assign(d, "test") for d in digests(200)} == {"test"}
    assert set(from_train) == {"train", "eval"}
    assert from_train.count("eval") / len(from_train) == pytest.approx(0.1, abs=0.02)


def test_explicit_eval_is_not_carved_again():
    policy = SplitPolicy(explicit_splits=("train", "eval", "test"))
    assert {policy.assign(d, "train") for d in digests(500)} == {"train"}


@pytest.mark.parametrize("train, eval_", [(0, 0.1), (1.0, 0.0), (0.8, 0.2), (0.5, -0.1)])
def test_bad_fractions_are_refused(train, eval_):
    with pytest.raises(ValueError, match="fraction"):
        SplitPolicy(train, eval_)


def split_counts(policy, examples):
    counts = {}
    for digest, label, explicit in examples:
        split = policy.assign(digest, explicit)
        counts.setdefault(label, {}).setdefault(split, 0)
        counts[label][split] += 1
    return counts


def test_a_small_class_reaches_every_split():
    policy = SplitPolicy()
    # Three images whose digests all fall in train by themselves.
    small = [d for d in digests(200) if policy.assign(d, "") == "train"][:3]
    examples = [(d, "big", "") for d in digests(400)[200:]] + [(d, "small", "") for d in small]
    assert split_counts(policy, examples)["small"] == {"train": 3}

    stratified = stratify(policy, examples)

    assert split_counts(stratified, examples)["small"] == {"train": 1, "eval": 1, "test": 1}
    assert split_counts(stratified, examples)["big"] == split_counts(policy, examples)["big"]  # untouched
    assert stratify(policy, list(reversed(examples))).overrides == stratified.overrides  # order-free


def test_eval_carved_from_an_explicit_train_split_reaches_every_class():
    policy = SplitPolicy(explicit_splits=("train", "test"))
    train = [d for d in digests(100) if policy.assign(d, "train") == "train"][:2]
    examples = [(d, "cat", "train") for d in train] + [(digests(101)[100], "cat", "test")]

    stratified = stratify(policy, examples)

    assert split_counts(stratified, examples)["cat"] == {"train": 1, "eval": 1, "test": 1}


def test_a_class_too_small_for_every_split_is_named():
    examples = [(d, "big", "") for d in digests(50)] + [(d, "rare", "") for d in digests(52)[50:]]
    with pytest.raises(SplitError, match="class 'rare' has 2 image.*train, eval, test"):
        stratify(SplitPolicy(), examples)
