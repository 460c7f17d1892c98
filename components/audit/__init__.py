"""The audit step: likely mislabelled images, near duplicates, outliers and class balance, on the features."""
