"""Builders shared by the unit tests: a tiny base network and a prepared examples directory."""


import keras

from components.ingest import core as ingest_core
from components.preprocess import core as preprocess_core

IMAGE_SIZE = 16


def save_tiny_base(path: str) -> str:
    """A small conv net saved as .keras: RGB in [0, 255] to a feature map."""
    images = keras.Input(shape=(IMAGE_SIZE, IMAGE_SIZE, 3))
    x = keras.layers.Rescaling(1.0 / 255)(images)
    x = keras.layers.Conv2D(4, 3, activation="relu", kernel_initializer=keras.initializers.GlorotUniform(seed=1))(x)
    keras.Model(images, x).save(path)
    return path


def prepared_examples(image_tree, tmp_path, image_size: int = IMAGE_SIZE, compact_examples: bool = False) -> str:
    """Ingest and preprocess a generated image tree; returns the examples directory."""
    raw_dir, examples_dir = str(tmp_path / "raw"), str(tmp_path / "examples")
    ingest_core.run(source=str(image_tree), output_dir=raw_dir)
    preprocess_core.run(raw_dir=raw_dir, output_dir=examples_dir, image_size=image_size,
                        train_fraction=0.6, eval_fraction=0.2, compact_examples=compact_examples)
    return examples_dir
