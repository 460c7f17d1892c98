"""Names of the files one step writes and a later step, or the run summary, reads.

They live here, in a module that imports nothing heavy, so that the summary and the cache can
read a run's artifacts without importing TensorFlow.
"""

METRICS = "metrics.json"
BLESSING = "blessing.json"
PREDICTIONS = "test_predictions.npz"
FINE_TUNE_INFO = "fine_tune.json"
PUSH_RESULT = "push.json"
FEATURES_INFO = "features.json"
BASE_MODEL_FILE = "base.keras"
HEAD_MODEL_FILE = "head.keras"
LIFT = "lift.json"
