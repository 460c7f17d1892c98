"""The artifact contract between steps: file names, record formats, the serving layout."""
