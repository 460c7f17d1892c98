"""A step's process: logging, lean imports, fast exit, CPU quota, devices, webhooks."""
