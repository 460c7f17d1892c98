"""The six steps of the headstart pipeline, each a KFP-free core plus a thin KFP component."""
