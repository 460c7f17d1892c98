"""The typed configuration: knobs with their help, and the settings each step takes."""
