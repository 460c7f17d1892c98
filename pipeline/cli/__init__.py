"""The `headstart` command: its subcommands, the `run` options made from the config, the offline demo."""

# setup.py's console script names `pipeline.cli:main`.
from pipeline.cli.commands import main

__all__ = ["main"]
