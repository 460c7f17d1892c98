"""Train head core: the MLP head on the frozen base's features (see `components.common.model.head_training`).

With `tune_seconds`, a head search (`search`) picks the hidden units, dropout, L2 and learning rate
first; the head then trains with them as it would with configured values, and history.json
carries the search's trials under "tuning" for the report.
"""

import dataclasses

from components.common.config.head_config import HeadConfig
from components.common.config.requested_gpus import check_requested_gpus
from components.common.model.head_training import TrainResult, train


def run(*, features_dir: str, head_model_dir: str, config: HeadConfig) -> TrainResult:
    """Trains the head on the train split's features, early-stopping on the eval split.

    Args:
        features_dir: extract-features' features directory.
        head_model_dir: the head model directory to fill (`head.keras`, `history.json`).
        config: how the head is built and trained.
    """
    check_requested_gpus("train-head")
    if not config.tune_seconds:
        return train(features_dir=features_dir, head_model_dir=head_model_dir, config=config)
    from components.train_head.search import search

    tuning = search(features_dir=features_dir, config=config)
    return train(features_dir=features_dir, head_model_dir=head_model_dir,
                 config=dataclasses.replace(config, **tuning.chosen), more_history={"tuning": tuning.as_dict()})
