"""Notify-run: the cluster's exit task, posting how a run ended to a chat webhook."""
