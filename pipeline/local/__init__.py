"""Running the pipeline on this machine: kfp.local, warm step processes, containers, isolated runs, progress."""
