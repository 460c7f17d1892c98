"""The artifact contract between steps: file names, record formats and batches of them, the serving layout."""
