"""Split assignment: deterministic by digest, with the requested shares."""

import hashlib

import pytest

from components.preprocess.splits import SplitPolicy


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
