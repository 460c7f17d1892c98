"""Head search: successive halving over the head's hyperparameters on the cached features, in a time budget.

Candidates are the configured head and heads drawn (seeded) from SEARCH_SPACE. Every candidate
trains a few epochs; the third of them with the lowest eval cross-entropy (the loss without its
L2 penalty, which would favour unpenalized heads) trains on, to three times as many
epochs; and so on, until the last rung trains its third to the configured `epochs`. A candidate
keeps its weights from rung to rung, so no epoch is trained twice. Training on cached vectors is
cheap, so a budget of a minute or two tries dozens of heads.

How many candidates start (81, 27, 9 or 3) is chosen from a probe: the configured head trained two
epochs gives the seconds per epoch and the fixed cost of a new head (building, tracing). When the
budget runs out, the candidate in training stops at the end of its epoch, and the best candidate
of the highest rung reached wins; if no candidate finished its first rung, the configured head
does. Heads outranked within a rung are freed at once, and fewer candidates start where the kept
heads would not fit in SEARCH_MEMORY_BYTES. If every candidate diverged, the configured head wins.
"""

import dataclasses
import gc
import itertools
import logging
import math
import random
import time
from dataclasses import dataclass, field

import keras
import tensorflow as tf

from components.common.config.head_config import HeadConfig
from components.common.model.head_training import (
    EpochTimer,
    compiled_head,
    feature_batches,
    feature_dataset,
    features_shape,
    training_statistics,
)
from components.common.runtime.training_strategy import choose_strategy

logger = logging.getLogger(__name__)

SEARCH_SPACE = {
    "hidden_units": ((), (64,), (128,), (256,), (256, 64)),
    "dropout": (0.0, 0.2, 0.4, 0.5),
    "l2": (0.0, 1e-5, 1e-4, 1e-3),
    "learning_rate": (3e-4, 1e-3, 3e-3),
}
KEEP_ONE_IN = 3
CANDIDATE_COUNTS = (81, 27, 9, 3)
PROBE_EPOCHS = 2
# The heads kept for the next rung (weights and Adam's moments) stay within this: with flattened
# features a 256-unit head is tens of MB, and 27 kept would not fit beside the step's other needs.
SEARCH_MEMORY_BYTES = 512 * 1024 * 1024


@dataclass(eq=False)  # compared and hashed by identity: a search holds sets of them
class Trial:
    """One candidate head: its hyperparameters, how far it got, and its eval results per epoch."""

    number: int
    values: dict
    rung: int = -1  # the highest rung it finished
    epochs: int = 0
    eval_losses: list[float] = field(default_factory=list)  # cross-entropy alone: no L2 penalty in it
    eval_accuracies: list[float] = field(default_factory=list)
    seconds: float = 0.0
    model: keras.Model | None = field(default=None, repr=False)

    def best_loss(self) -> float:
        """Its lowest eval cross-entropy over the epochs trained (a diverged epoch counts as infinite)."""
        return min((loss if math.isfinite(loss) else math.inf for loss in self.eval_losses), default=math.inf)

    def row(self) -> dict:
        """Its line of the report's table of trials; rungs count from 1, and 0 is a trial never trained."""
        best = self.eval_losses.index(self.best_loss()) if self.best_loss() < math.inf else None
        return {"trial": self.number, **_plain(self.values), "rung": self.rung + 1, "epochs": self.epochs,
                "eval_cross_entropy": None if best is None else round(self.eval_losses[best], 5),
                "eval_accuracy": None if best is None else round(self.eval_accuracies[best], 5),
                "seconds": round(self.seconds, 2)}


@dataclass(frozen=True)
class SearchResult:
    """The values chosen, and the search that chose them, as history.json's "tuning" entry holds it."""

    chosen: dict
    budget_seconds: int
    seconds: float
    candidates: int
    rung_epochs: list[int]
    stopped: str
    trials: list[dict]

    def as_dict(self) -> dict:
        """JSON-ready: tuples as lists."""
        return {**dataclasses.asdict(self), "chosen": _plain(self.chosen)}


def _plain(values: dict) -> dict:
    return {name: list(value) if isinstance(value, tuple) else value for name, value in values.items()}


def candidate_values(config: HeadConfig, count: int) -> list[dict]:
    """`count` distinct hyperparameter sets: the configured head's first, then a seeded draw from SEARCH_SPACE."""
    configured = {name: getattr(config, name) for name in SEARCH_SPACE}
    grid = [dict(zip(SEARCH_SPACE, combination)) for combination in itertools.product(*SEARCH_SPACE.values())]
    random.Random(config.seed).shuffle(grid)
    return [configured] + [values for values in grid if values != configured][:count - 1]


def rung_epochs(total_epochs: int, candidates: int) -> list[int]:
    """The epochs each rung trains its candidates to: the last rung reaches `total_epochs`."""
    rungs = max(1, round(_log(candidates)))
    return [max(1, round(total_epochs / KEEP_ONE_IN ** (rungs - 1 - rung))) for rung in range(rungs)]


def _log(candidates: int) -> float:
    count, rungs = candidates, 0
    while count > 1:
        count, rungs = count / KEEP_ONE_IN, rungs + 1
    return rungs


def estimated_seconds(candidates: int, total_epochs: int, new_head_seconds: float, epoch_seconds: float) -> float:
    """What successive halving from `candidates` heads costs, at these probe figures."""
    seconds, trained = 0.0, 0
    for rung, epochs in enumerate(rung_epochs(total_epochs, candidates)):
        alive = max(1, candidates // KEEP_ONE_IN ** rung)
        seconds += alive * (new_head_seconds * (rung == 0) + (epochs - trained) * epoch_seconds)
        trained = epochs
    return seconds


class _Deadline(keras.callbacks.Callback):
    """Stops a candidate's training at the end of the epoch that passes the search's deadline."""

    def __init__(self, deadline: float):
        super().__init__()
        self._deadline = deadline

    def on_epoch_end(self, epoch, logs=None):
        """Stops training once the deadline has passed."""
        if time.perf_counter() > self._deadline:
            self.model.stop_training = True


class _Trainer:
    """Trains candidate heads on the splits' batches, read once and shared by every candidate."""

    def __init__(self, features_dir: str, config: HeadConfig):
        dim, _, labels = features_shape(features_dir)
        self._config, self._dim, self._classes = config, dim, len(labels)
        self._strategy = choose_strategy()
        self._statistics = training_statistics(feature_batches(features_dir, "train", dim, 1024), self._classes)
        self._class_weight = self._statistics.balanced_class_weights() if config.class_weights else None
        self._train = feature_dataset(features_dir, "train", dim, self._classes, config, shuffle=True)
        self._eval = feature_dataset(features_dir, "eval", dim, self._classes, config, shuffle=False)

    def head_bytes(self) -> int:
        """Memory of the largest candidate head while it trains: weights and Adam's two moments."""
        widest = max((*SEARCH_SPACE["hidden_units"], self._config.hidden_units), key=lambda units: sum(units))
        sizes = [self._dim, *widest, self._classes if self._classes > 2 else 1]
        return 3 * 4 * sum(inputs * outputs + outputs for inputs, outputs in zip(sizes, sizes[1:]))

    def advance(self, trial: Trial, epochs: int, callbacks: tuple = ()) -> None:
        """Trains `trial`'s head on towards `epochs` epochs, building it first if it is new; callbacks may stop it."""
        start = time.perf_counter()
        if trial.model is None:
            keras.utils.set_random_seed(self._config.seed)
            config = dataclasses.replace(self._config, **trial.values)
            trial.model = compiled_head(self._strategy, self._dim, self._classes, config, self._statistics,
                                        with_cross_entropy=True)
        if epochs > trial.epochs:
            history = trial.model.fit(self._train, validation_data=self._eval, initial_epoch=trial.epochs,
                                      epochs=epochs, class_weight=self._class_weight, verbose=0,
                                      callbacks=list(callbacks)).history
            trial.eval_losses += [float(value) for value in history["val_cross_entropy"]]
            trial.eval_accuracies += [float(value) for value in history["val_accuracy"]]
            trial.epochs += len(history["val_cross_entropy"])
        trial.seconds += time.perf_counter() - start

    def probe(self) -> tuple[float, float]:
        """Seconds of a new head's fixed cost and of one epoch: the configured head trained PROBE_EPOCHS."""
        timer = EpochTimer()
        trial = Trial(-1, {name: getattr(self._config, name) for name in SEARCH_SPACE})
        self.advance(trial, PROBE_EPOCHS, (timer,))
        epoch_seconds = timer.seconds[-1]  # the first epoch includes tracing
        return max(0.0, trial.seconds - PROBE_EPOCHS * epoch_seconds), epoch_seconds


class _Freer:
    """Drops the heads of trials that train no further, and has them collected before too many wait.

    A Keras model sits in reference cycles, so a dropped one is freed only by a garbage collection;
    one collection per drop would cost seconds over 81 candidates.
    """

    def __init__(self):
        self._waiting = 0

    def drop(self, trials: list[Trial], keep: int) -> None:
        """Drops these trials' heads; collects once more than `keep` wait."""
        for trial in trials:
            if trial.model is not None:
                trial.model = None
                self._waiting += 1
        if self._waiting > keep:
            gc.collect()
            self._waiting = 0


def _rank(trials: list[Trial]) -> list[Trial]:
    return sorted(trials, key=lambda trial: (trial.best_loss(), -max(trial.eval_accuracies, default=0.0),
                                             trial.number))


def _winner(trials: list[Trial], configured: dict, stopped: str) -> tuple[dict, str]:
    """The best values of the highest rung reached, and why the search stopped.

    The configured values when no candidate finished a rung, or when every one diverged.
    """
    reached = _rank([trial for trial in trials if trial.rung == max(t.rung for t in trials)])
    if reached[0].rung < 0:
        return configured, stopped
    if reached[0].best_loss() == math.inf:
        return configured, "every candidate diverged"
    return reached[0].values, stopped


def _candidate_count(config: HeadConfig, trainer: _Trainer, seconds_left: float) -> int:
    """The most candidates whose halving fits the time left (by the probe) and whose kept heads fit in memory."""
    new_head_seconds, epoch_seconds = trainer.probe()
    logger.info("train_head: head search probe: a new head %.1f s, an epoch %.2f s", new_head_seconds, epoch_seconds)
    # Alive at once: the `keep` best, the one training, and up to `keep` dropped awaiting collection.
    fitting = [count for count in CANDIDATE_COUNTS
               if (2 * (count // KEEP_ONE_IN) + 2) * trainer.head_bytes() <= SEARCH_MEMORY_BYTES] \
        or [CANDIDATE_COUNTS[-1]]
    return next((count for count in fitting
                 if estimated_seconds(count, config.epochs, new_head_seconds, epoch_seconds) <= seconds_left),
                fitting[-1])


def search(*, features_dir: str, config: HeadConfig) -> SearchResult:
    """Searches for about `config.tune_seconds` seconds; the best values found, and the table of trials.

    Seeded, but the machine's speed decides how many candidates start and where the budget cuts,
    so another machine may choose differently; the step cache keeps a run's choice. The eval
    split ranks the candidates, so with an empty eval split there is no search: the configured
    values are returned, with the reason.
    """
    start = time.perf_counter()
    deadline = start + config.tune_seconds
    configured = {name: getattr(config, name) for name in SEARCH_SPACE}
    _, counts, _ = features_shape(features_dir)
    if not counts.get("eval"):
        logger.info("train_head: no head search: the eval split is empty")
        return SearchResult(configured, config.tune_seconds, 0.0, 0, [], "no search: the eval split is empty", [])
    keras.utils.set_random_seed(config.seed)
    tf.config.experimental.enable_op_determinism()
    trainer = _Trainer(features_dir, config)
    candidates = _candidate_count(config, trainer, deadline - time.perf_counter())
    epochs_by_rung = rung_epochs(config.epochs, candidates)
    logger.info("train_head: head search: %d candidates, rungs of %s epochs", candidates, epochs_by_rung)
    trials = [Trial(number, values) for number, values in enumerate(candidate_values(config, candidates))]
    stopped, alive, stop_at_deadline, freer = "finished", trials, (_Deadline(deadline),), _Freer()
    for rung, epochs in enumerate(epochs_by_rung):
        last = rung == len(epochs_by_rung) - 1
        keep = 0 if last else max(1, len(alive) // KEEP_ONE_IN)
        finished = []
        for trial in alive:
            if time.perf_counter() <= deadline:
                trainer.advance(trial, epochs, stop_at_deadline)
            if trial.epochs < epochs:
                stopped = f"the budget ran out in rung {rung + 1} of {len(epochs_by_rung)}"
                trial.model = None
                break
            trial.rung = rung
            finished = _rank(finished + [trial])
            freer.drop(finished[keep:], keep)  # outranked by `keep` others already: they train no further
        logger.info("train_head: head search rung %d/%d: %d of %d candidates at %d epochs, best eval cross-entropy %s",
                    rung + 1, len(epochs_by_rung), len(finished), len(alive), epochs,
                    f"{finished[0].best_loss():.4f}" if finished else "none")
        if stopped != "finished" or last:
            break
        alive = finished[:keep]
    for trial in trials:
        trial.model = None
    chosen, stopped = _winner(trials, configured, stopped)
    logger.info("train_head: head search chose %s (%s)", _plain(chosen), stopped)
    rows = sorted((trial.row() for trial in trials),
                  key=lambda row: (-row["rung"], math.inf if row["eval_cross_entropy"] is None
                                   else row["eval_cross_entropy"]))
    return SearchResult(chosen, config.tune_seconds, round(time.perf_counter() - start, 2), candidates,
                        epochs_by_rung, stopped, rows)
