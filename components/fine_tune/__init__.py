"""Fine-tune: the optional second phase, the top of the base trained end to end at a low rate."""
