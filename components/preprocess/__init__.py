"""Preprocess: an Apache Beam pipeline that decodes, resizes, validates and splits the images."""
