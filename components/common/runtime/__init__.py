"""A step's process: logging, lean imports, fast exit, CPU quota and threads, the training strategy, webhooks."""
