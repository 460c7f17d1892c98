"""Tools for developing headstart: the container rehearsal and the Cloud Storage emulator."""
