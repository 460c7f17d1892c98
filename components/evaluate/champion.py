"""Which model is serving, and what that means for reusing a stored evaluation.

The stored evaluation is the challenger's own: with no champion, or when the champion is this
very model, it is reused and only the blessing decided again. Another model in serving must be
scored on this test split, so the step runs (and stores its result for next time).
"""

import os
from dataclasses import dataclass

from components.common.contract.serving_layout import holds_model, latest_version_dir


@dataclass(frozen=True)
class Champion:
    """The serving model a challenger is compared with.

    Attributes:
        newest_dir: the newest pushed version's directory; None when nothing is serving.
        same_model_dir: that directory when it holds this very model (same content key), else None.
    """

    newest_dir: str | None
    same_model_dir: str | None

    @property
    def must_rescore(self) -> str | None:
        """Why a stored evaluation cannot stand for this run (another model serves), else None."""
        if self.newest_dir is None or self.same_model_dir:
            return None
        return f"another model is serving ({self.newest_dir}): it is scored on this test split"

    @property
    def same_model_version(self) -> int | None:
        """The version number that holds this very model, if the newest one does."""
        return int(os.path.basename(self.same_model_dir.rstrip("/"))) if self.same_model_dir else None


def find_champion(serving_root: str, model_name: str, model_key: str) -> Champion:
    """The model serving at `<serving_root>/<model_name>/`, compared by content key with this one."""
    # One listing of the serving root (a gs:// one is a request), read for both answers.
    newest = latest_version_dir(serving_root, model_name) if serving_root and model_name else None
    return Champion(newest, newest if holds_model(newest, model_key) else None)
