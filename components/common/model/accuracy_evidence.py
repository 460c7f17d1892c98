"""How much a test accuracy can be trusted, from the number of images behind it.

The Wilson score interval is used because it stays honest at the edges: 17 of 17 right gives
0.816 to 1.000 at 95%, where a bootstrap of the same images gives 1.000 to 1.000.
"""

import math

Z_95 = 1.959964


def wilson_interval(accuracy: float, count: int, z: float = Z_95) -> tuple[float, float]:
    """The two-sided 95% Wilson interval of an accuracy measured on `count` images."""
    if count <= 0:
        return 0.0, 1.0
    denominator = 1 + z * z / count
    center = (accuracy + z * z / (2 * count)) / denominator
    half = z * math.sqrt(accuracy * (1 - accuracy) / count + z * z / (4 * count * count)) / denominator
    return max(0.0, center - half), min(1.0, center + half)


def too_small(accuracy: float, count: int, max_interval: float) -> bool:
    """Whether `count` test images leave the accuracy a 95% interval wider than `max_interval`.

    The one rule the blessing, the metrics and the runs page share; a tiny slack keeps a width
    equal to the bound from failing it through rounding.
    """
    low, high = wilson_interval(accuracy, count)
    return high - low > max_interval + 1e-9
