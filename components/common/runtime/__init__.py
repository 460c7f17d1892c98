"""A step's process: logging, lean imports, fast exit, CPU quota and threads, what it used, where heads train."""
