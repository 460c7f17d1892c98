"""Storage: atomic local and gs:// files, Cloud Storage through gcsfuse, the step cache."""
