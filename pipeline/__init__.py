"""The headstart pipeline: its definition, typed configuration, local runner and command line."""
