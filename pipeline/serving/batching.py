"""Server-side batching for `headstart serve`: the images of concurrent requests in one model call.

TF Serving's batching, under its parameter names:
    max_batch_size          the most images in one model call
    batch_timeout_micros    how long a batch that is not full waits for more images, counted from
                            the arrival of its oldest
    max_enqueued_batches    the queue's bound, in batches of max_batch_size images: a request is
                            refused once the queue holds that many images (or that many batches'
                            worth of pixels), counting those being run
    num_batch_threads       model calls that run at once
A request larger than max_batch_size is split over several batches, as TF Serving does with
`enable_large_batch_splitting`, and answered once all its images are. A batch holds the images of
one model version only.

One client's bad image must not fail the others' requests: when a merged batch fails, each
request in it is run again on its own, and only the requests that fail on their own get the error.
"""

import asyncio
import collections
import concurrent.futures
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

# The defaults, measured with `python -m benchmarks.serve` (docs/serving.md). Two model calls at
# once: one call's Python work between TensorFlow's ops leaves the cores idle that a second fills.
MAX_BATCH_SIZE = 32
BATCH_TIMEOUT_MICROS = 2000
MAX_ENQUEUED_BATCHES = 4
NUM_BATCH_THREADS = 2
BATCHING_HELP = {
    "max_batch_size": "the most images in one model call",
    "batch_timeout_micros": "how long, in microseconds, a batch that is not full waits for more images",
    "max_enqueued_batches": "the queue's bound, in batches of max_batch_size images: once that many images are "
                            "waiting or running, a request gets a 503 with Retry-After",
    "num_batch_threads": "model calls that run at once",
}

# Run over one batch: (model, encoded images) -> one answer per image.
RunBatch = Callable[[Any, list[bytes]], list[Any]]


@dataclass(eq=False)
class _Request:
    """One request's images, what is done of them, and where its answer goes."""

    model: Any
    images: list[bytes]
    pixels: list[int]
    future: concurrent.futures.Future
    arrived: float = field(default_factory=time.monotonic)
    taken: int = 0  # images handed to a batch so far
    answers: list = field(default_factory=list)
    unanswered: int = 0

    def __post_init__(self):
        self.answers = [None] * len(self.images)
        self.unanswered = len(self.images)


@dataclass
class _Slice:
    """A run of consecutive images of one request within a batch."""

    request: _Request
    start: int
    stop: int

    @property
    def images(self) -> list[bytes]:
        return self.request.images[self.start:self.stop]


class BatchingQueue:
    """Merges the images of queued requests into batches run by `num_batch_threads` threads.

    Args:
        run_batch: runs a model over a list of encoded images; returns one answer per image.
        max_batch_size, batch_timeout_micros, max_enqueued_batches, num_batch_threads: as above.
        max_batch_pixels: the most pixels (from the image headers) one batch decodes; a batch is
            closed before an image would pass it, and the queue holds at most
            max_enqueued_batches times as many.
    """

    def __init__(self, run_batch: RunBatch, *, max_batch_size: int, batch_timeout_micros: int,
                 max_enqueued_batches: int, num_batch_threads: int, max_batch_pixels: int):
        for name, value, least in [("max_batch_size", max_batch_size, 1),
                                   ("batch_timeout_micros", batch_timeout_micros, 0),
                                   ("max_enqueued_batches", max_enqueued_batches, 1),
                                   ("num_batch_threads", num_batch_threads, 1),
                                   ("max_batch_pixels", max_batch_pixels, 1)]:
            if value < least:
                raise ValueError(f"{name} must be at least {least}, got {value}")
        self._run_batch = run_batch
        self.max_batch_size = max_batch_size
        self.batch_timeout = batch_timeout_micros / 1e6
        self.max_enqueued_batches = max_enqueued_batches
        self.max_batch_pixels = max_batch_pixels
        self.max_enqueued_images = max_enqueued_batches * max_batch_size
        self.max_enqueued_pixels = max_enqueued_batches * max_batch_pixels
        self._waiting: collections.deque[_Request] = collections.deque()
        # Images and pixels admitted and not yet answered; a request still being read holds one image.
        self._held_images = 0
        self._held_pixels = 0
        self._closed = False
        self._changed = threading.Condition()
        self._threads = [threading.Thread(target=self._serve_batches, name=f"batch-{index}", daemon=True)
                         for index in range(num_batch_threads)]
        for thread in self._threads:
            thread.start()

    def held(self) -> tuple[int, int]:
        """(images, pixels) the queue holds now: waiting, being run, or reserved by a request being read."""
        with self._changed:
            return self._held_images, self._held_pixels

    def admit(self) -> bool:
        """Reserves one image for a request whose body is still to be read, unless the queue is full.

        `submit` turns the reservation into the request's real images; `release` gives it back
        when the request never gets that far.
        """
        with self._changed:
            if self._held_images >= self.max_enqueued_images or self._held_pixels >= self.max_enqueued_pixels:
                return False
            self._held_images += 1
            return True

    def release(self) -> None:
        """Gives back the image `admit` reserved, for a request that will not be submitted."""
        with self._changed:
            self._held_images -= 1

    async def submit(self, model: Any, images: list[bytes], pixels: list[int]) -> list:
        """Queues an admitted request's images for `model`; returns their answers, in order.

        Raises:
            whatever `run_batch` raised over this request's images on their own.
        """
        future: concurrent.futures.Future = concurrent.futures.Future()
        with self._changed:
            if self._closed:
                self._held_images -= 1
                raise RuntimeError("the server is shutting down")
            self._held_images += len(images) - 1
            self._held_pixels += sum(pixels)
            self._waiting.append(_Request(model, images, pixels, future))
            self._changed.notify()
        return await asyncio.wrap_future(future)

    def shutdown(self) -> None:
        """Stops the batch threads once their batches end; requests still waiting are cancelled."""
        with self._changed:
            self._closed = True
            for request in self._waiting:
                request.future.cancel()
            self._waiting.clear()
            self._changed.notify_all()

    def _serve_batches(self) -> None:
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            self._run(batch)

    def _next_batch(self) -> list[_Slice] | None:
        """Waits for a batch that is full or whose oldest image has waited batch_timeout; takes it."""
        with self._changed:
            while True:
                if self._closed:
                    return None
                if not self._waiting:
                    self._changed.wait()
                    continue
                images, full = self._fill()
                deadline = self._waiting[0].arrived + self.batch_timeout
                remaining = deadline - time.monotonic()
                if full or remaining <= 0:
                    return self._take(images)
                self._changed.wait(remaining)

    def _fill(self) -> tuple[int, bool]:
        """How many waiting images of the oldest request's model the next batch would hold, and whether it is full."""
        model = self._waiting[0].model
        count, pixels = 0, 0
        for request in self._waiting:
            if request.model is not model:
                continue
            for index in range(request.taken, len(request.images)):
                if count == self.max_batch_size or (count and pixels + request.pixels[index] > self.max_batch_pixels):
                    return count, True
                count += 1
                pixels += request.pixels[index]
        return count, False

    def _take(self, count: int) -> list[_Slice]:
        """Takes the next `count` waiting images of the oldest request's model, as slices."""
        model = self._waiting[0].model
        batch = []
        for request in list(self._waiting):
            if count == 0:
                break
            if request.model is not model:
                continue
            stop = min(len(request.images), request.taken + count)
            batch.append(_Slice(request, request.taken, stop))
            count -= stop - request.taken
            request.taken = stop
            if stop == len(request.images):
                self._waiting.remove(request)
        return batch

    def _run(self, batch: list[_Slice]) -> None:
        model = batch[0].request.model
        images = [image for piece in batch for image in piece.images]
        try:
            answers = self._run_batch(model, images)
        except Exception as error:  # pylint: disable=broad-except
            if len(batch) == 1:
                self._fail(batch[0], error)
                return
            # Each request on its own, so that only the one that holds the fault gets the error.
            for piece in batch:
                self._run([piece])
            return
        offset = 0
        for piece in batch:
            size = piece.stop - piece.start
            self._answer(piece, answers[offset:offset + size])
            offset += size

    def _answer(self, piece: _Slice, answers: list) -> None:
        request = piece.request
        with self._changed:
            request.answers[piece.start:piece.stop] = answers
            request.unanswered -= len(answers)
            self._give_back(piece)
            if request.unanswered or request.future.done():
                return
        request.future.set_result(request.answers)

    def _fail(self, piece: _Slice, error: Exception) -> None:
        request = piece.request
        with self._changed:
            self._give_back(piece)
            if request.future.done():
                return
            # Its other images need no batch any more.
            if request in self._waiting:
                self._waiting.remove(request)
                self._held_images -= len(request.images) - request.taken
                self._held_pixels -= sum(request.pixels[request.taken:])
                request.taken = len(request.images)
        request.future.set_exception(error)

    def _give_back(self, piece: _Slice) -> None:
        """Frees what a finished slice held in the queue; called with the lock held."""
        self._held_images -= piece.stop - piece.start
        self._held_pixels -= sum(piece.request.pixels[piece.start:piece.stop])
