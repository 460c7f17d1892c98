"""Server-side batching: concurrent requests merged into model calls, each answered on its own."""

import asyncio
import threading

import pytest

from pipeline.serving.batching import BatchingQueue


class RecordingModel:
    """Answers each image with (model name, image); records every call, and can hold the first."""

    def __init__(self, name="m", fail_on=b""):
        self.name = name
        self.fail_on = fail_on
        self.calls: list[list[bytes]] = []
        self.release_first = threading.Event()
        self.first_started = threading.Event()


def run_batch(model: RecordingModel, images):
    model.calls.append(list(images))
    if len(model.calls) == 1:
        model.first_started.set()
        assert model.release_first.wait(10)
    if model.fail_on and model.fail_on in images:
        raise ValueError(f"{model.fail_on!r} is not an image")
    return [(model.name, image) for image in images]


def make_queue(**overrides):
    settings = dict(max_batch_size=8, batch_timeout_micros=0, max_enqueued_batches=4, num_batch_threads=1,
                    max_batch_pixels=10**9)
    settings.update(overrides)
    return BatchingQueue(run_batch, **settings)


async def submit(queue, model, images, pixels=None):
    assert queue.admit()
    return await queue.submit(model, images, pixels or [1] * len(images))


def run_while_first_batch_holds(queue, model, requests):
    """Sends a first one-image request, then `requests` while its batch runs; returns every answer."""

    async def scenario():
        first = asyncio.ensure_future(submit(queue, model, [b"first"]))
        await asyncio.get_running_loop().run_in_executor(None, model.first_started.wait, 10)
        rest = [asyncio.ensure_future(submit(queue, m, images)) for m, images in requests]
        await asyncio.sleep(0.2)  # every request is queued behind the first batch
        model.release_first.set()
        return await asyncio.gather(first, *rest, return_exceptions=True)

    try:
        return asyncio.run(scenario())
    finally:
        queue.shutdown()


def test_concurrent_requests_share_one_model_call_and_get_their_own_answers():
    model = RecordingModel()
    answers = run_while_first_batch_holds(make_queue(), model, [(model, [b"a1", b"a2"]), (model, [b"b1"]),
                                                                (model, [b"c1", b"c2", b"c3"])])

    assert model.calls == [[b"first"], [b"a1", b"a2", b"b1", b"c1", b"c2", b"c3"]]
    assert answers[1] == [("m", b"a1"), ("m", b"a2")]
    assert answers[2] == [("m", b"b1")]
    assert answers[3] == [("m", b"c1"), ("m", b"c2"), ("m", b"c3")]


def test_a_request_larger_than_max_batch_size_is_split_and_answered_in_order():
    model = RecordingModel()
    images = [b"%d" % index for index in range(7)]
    answers = run_while_first_batch_holds(make_queue(max_batch_size=3), model, [(model, images)])

    assert [len(call) for call in model.calls] == [1, 3, 3, 1]
    assert answers[1] == [("m", image) for image in images]


def test_a_batch_closes_before_it_would_pass_the_pixel_bound():
    model = RecordingModel()
    queue = make_queue(max_batch_pixels=100)

    async def scenario():
        first = asyncio.ensure_future(submit(queue, model, [b"first"]))
        await asyncio.get_running_loop().run_in_executor(None, model.first_started.wait, 10)
        big = asyncio.ensure_future(submit(queue, model, [b"big1", b"big2", b"big3"], [60, 60, 60]))
        await asyncio.sleep(0.2)
        model.release_first.set()
        return await asyncio.gather(first, big)

    try:
        answers = asyncio.run(scenario())
    finally:
        queue.shutdown()
    assert model.calls[1:] == [[b"big1"], [b"big2"], [b"big3"]]
    assert answers[1] == [("m", b"big1"), ("m", b"big2"), ("m", b"big3")]


def test_a_bad_image_fails_only_its_own_request():
    model = RecordingModel(fail_on=b"bad")
    answers = run_while_first_batch_holds(make_queue(), model, [(model, [b"good1"]), (model, [b"x", b"bad"]),
                                                                (model, [b"good2"])])

    assert answers[1] == [("m", b"good1")] and answers[3] == [("m", b"good2")]
    assert isinstance(answers[2], ValueError) and "not an image" in str(answers[2])
    # The merged batch failed, then each request ran on its own.
    assert model.calls[1] == [b"good1", b"x", b"bad", b"good2"]
    assert sorted(model.calls[2:]) == sorted([[b"good1"], [b"x", b"bad"], [b"good2"]])


def test_a_batch_holds_one_model_version_only():
    old, new = RecordingModel("old"), RecordingModel("new")
    new.first_started.set()
    new.release_first.set()
    answers = run_while_first_batch_holds(make_queue(), old, [(old, [b"o1"]), (new, [b"n1"]), (old, [b"o2"])])

    assert old.calls == [[b"first"], [b"o1", b"o2"]] and new.calls == [[b"n1"]]
    assert answers[2] == [("new", b"n1")] and answers[3] == [("old", b"o2")]


def test_the_queue_is_bounded_in_images_and_frees_what_was_answered():
    model = RecordingModel()
    queue = make_queue(max_batch_size=4, max_enqueued_batches=2)  # 8 images
    seen = {}

    async def scenario():
        first = asyncio.ensure_future(submit(queue, model, [b"f"] * 7))
        await asyncio.get_running_loop().run_in_executor(None, model.first_started.wait, 10)
        seen["holding 7"] = queue.admit()  # 7 of 8 held: one more request is let in (its reservation)
        seen["holding 8"] = queue.admit()  # full
        queue.release()
        model.release_first.set()
        await first
        seen["after"] = queue.held()

    try:
        asyncio.run(scenario())
    finally:
        queue.shutdown()
    assert seen == {"holding 7": True, "holding 8": False, "after": (0, 0)}


@pytest.mark.parametrize("name", ["max_batch_size", "max_enqueued_batches", "num_batch_threads"])
def test_a_setting_below_one_names_itself(name):
    with pytest.raises(ValueError, match=f"{name} must be at least 1, got 0"):
        make_queue(**{name: 0})


def test_serve_takes_the_batching_parameters_under_tf_servings_names(capsys):
    from pipeline.cli.commands import build_parser

    args = build_parser().parse_args(["serve", "--max-batch-size", "16", "--batch-timeout-micros", "0",
                                      "--max-enqueued-batches", "8", "--num-batch-threads", "2"])
    assert (args.max_batch_size, args.batch_timeout_micros, args.max_enqueued_batches, args.num_batch_threads) == \
        (16, 0, 8, 2)
    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", "--max-batch-size", "0"])
    assert "--max-batch-size: must be at least 1, got 0" in capsys.readouterr().err
