"""Ingest: reads a source into sharded TFRecords of encoded images plus a label vocabulary."""
