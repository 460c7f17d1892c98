"""`make bench`: speed and memory of the pipeline, measured side by side on generated JPEGs."""
