"""The model: the base network, the joined model, head training, features, Grad-CAM."""
