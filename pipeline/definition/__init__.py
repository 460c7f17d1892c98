"""The pipeline definition: the steps' wiring, its typed config and the deployment settings."""
