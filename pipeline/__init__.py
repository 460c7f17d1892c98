"""The headstart pipeline and what runs it: its definition, the CLI, local and cluster runs, serving, reporting."""
