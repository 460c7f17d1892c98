"""Keeps optional packages that a step does not use from loading with TensorFlow.

Keras imports scikit-learn at start-up, only for its optional scikit-learn wrappers, and treats
it as absent when the import fails. That import alone costs about a second per step process on
a small machine, a seventh of TensorFlow's and Keras's start-up. Steps that never use
scikit-learn (all but evaluate and the digits demo) mark it absent before TensorFlow is imported.
"""

import sys


def keep_scikit_learn_out() -> None:
    """Makes `import sklearn` fail in this process, unless it or Keras is already loaded."""
    if "sklearn" not in sys.modules and "keras" not in sys.modules:
        sys.modules["sklearn"] = None  # the import system's "known missing" marker
