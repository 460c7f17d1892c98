"""Edge export: TFLite models beside the SavedModel, each kept only if it answers like the evaluated model.

Both take what the shared `decode_and_resize` gives, one image at a time: uint8 pixels [1, S, S, 3]
in [0, 255], so a device runs the same decode and resize as serving and then the model. Both give
`probabilities` [1, classes]: float32 from the float16 model, uint8 with the output's quantization
(scale, zero point) from the int8 one.

Each is checked on CHECK_IMAGES test images spread evenly over the test split (all of a smaller
split), against the evaluated model's answers on each image alone (evaluate's
`single_view_probabilities`): with test-time augmentation the SavedModel averages views, and a
TFLite model takes one image.
- float16: weights stored as float16, computed in float32; kept when it gives at least
  FLOAT16_MIN_AGREEMENT of the images the model's class and its accuracy is at most
  FLOAT16_MAX_ACCURACY_DROP below the model's. Rounding the weights moves probabilities by about
  1e-3 on average and a few 1e-2 where the head is steepest, so an image near the decision
  boundary may change class; a rule of no change at all refuses sound models on large test sets.
- int8: weights and activations int8, input and output uint8, calibrated on up to
  REPRESENTATIVE_IMAGES training images after a bias correction for int8 weight rounding
  (`int8_correction`); kept when its accuracy is at most INT8_MAX_ACCURACY_DROP below the
  model's on the same images.
"""

import itertools
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Iterator

import numpy as np
import tensorflow as tf

from components.common.contract import examples_info
from components.common.contract.example_batches import image_batches
from components.common.model.modeling import class_probabilities
from components.push.int8_correction import corrected_for_int8

FLOAT16 = "float16"
INT8 = "int8"
FILES = {FLOAT16: "model_float16.tflite", INT8: "model_int8.tflite"}
REPRESENTATIVE_IMAGES = 100
# Of those, the images the int8 bias correction measures its shifts on (see `int8_correction`):
# each costs a pass per corrected layer, and a shift is a channel's mean over every pixel of them
# (12,544 positions per image at MobileNet's first layers), steady with a few images.
CORRECTION_IMAGES = 16
# The sample's size: had 1% or more of all test images changed class, fewer than 5% of samples of
# 1,200 would agree on 99.5% (Clopper-Pearson), so a float16 model that passes changes the class,
# and so the accuracy, of under 1% of the images at 95% confidence.
CHECK_IMAGES = 1200
FLOAT16_MIN_AGREEMENT = 0.995
FLOAT16_MAX_ACCURACY_DROP = 0.005
INT8_MAX_ACCURACY_DROP = 0.01


def _probabilities_function(model, image_size: int, pixel_type: tf.DType):
    """A concrete function from one image's pixels to its class probabilities, and what it holds."""
    holder = tf.Module()
    holder.model_variables = [variable.value for variable in model.variables]

    @tf.function(input_signature=[tf.TensorSpec([1, image_size, image_size, 3], pixel_type, name="pixels")])
    def probabilities(pixels):
        return {"probabilities": class_probabilities(model(tf.cast(pixels, tf.float32), training=False))}

    return probabilities.get_concrete_function(), holder


def _images(examples_dir: str, split: str, image_size: int) -> Iterator[tuple[np.ndarray, int]]:
    """One split's processed images as uint8 [1, S, S, 3] and their label index, in file order."""
    for pixels, labels in image_batches(examples_dir, split, image_size, 64):
        for image, label in zip(pixels.numpy().astype(np.uint8), labels.numpy()):
            yield image[np.newaxis], int(label)


def convert(model, image_size: int, examples_dir: str) -> dict[str, bytes]:
    """The float16 and the int8 TFLite models of `model` (float images in [0, 255] to head outputs)."""
    function, holder = _probabilities_function(model, image_size, tf.uint8)
    converter = tf.lite.TFLiteConverter.from_concrete_functions([function], holder)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.target_spec.supported_types = [tf.float16]
    float16 = converter.convert()

    calibration = [image.astype(np.float32) for image, _ in
                   itertools.islice(_images(examples_dir, "train", image_size), REPRESENTATIVE_IMAGES)]
    with corrected_for_int8(model, np.concatenate(calibration[:CORRECTION_IMAGES])):
        int8 = int8_model(model, image_size, calibration)
    return {FLOAT16: float16, INT8: int8}


def int8_model(model, image_size: int, calibration: list[np.ndarray]) -> bytes:
    """The full-int8 TFLite model of `model`, calibrated on float images [1, S, S, 3] in [0, 255].

    Float pixels in, and uint8 given as the input type: the converter makes the input uint8 with
    scale 1 and zero point 0 when the calibration spans 0 to 255, and the model has no float op
    (uint8 pixels in would need a cast).
    """
    function, holder = _probabilities_function(model, image_size, tf.float32)
    converter = tf.lite.TFLiteConverter.from_concrete_functions([function], holder)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([image] for image in calibration)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.uint8
    converter.inference_output_type = tf.uint8
    return converter.convert()


class EdgeModel:
    """A TFLite model's interpreter, answering probabilities for one image's uint8 pixels at a time."""

    def __init__(self, model_content: bytes | None = None, model_path: str | None = None,
                 threads: int | None = None):
        # LiteRT's interpreter, which tf.lite.Interpreter is deprecated in favour of: the runtime
        # devices ship.
        from ai_edge_litert.interpreter import Interpreter

        self._interpreter = Interpreter(model_content=model_content, model_path=model_path, num_threads=threads)
        self._interpreter.allocate_tensors()
        self._input = self._interpreter.get_input_details()[0]
        self._output = self._interpreter.get_output_details()[0]
        self.image_size = int(self._input["shape"][1])

    def probabilities(self, pixels: np.ndarray) -> np.ndarray:
        """Class probabilities [classes] of uint8 pixels [S, S, 3] or [1, S, S, 3], dequantized.

        An int8 model's input is quantized from the pixel values: scale 1 and zero point 0 when
        its calibration images spanned 0 to 255, so the pixels go in as they are; another scale
        (dark calibration images) is applied here, as a device must.
        """
        values = pixels.reshape(self._input["shape"]).astype(np.float32)
        scale, zero_point = self._input["quantization"]
        if scale:
            values = np.round(values / scale + zero_point)
        limits = np.iinfo(self._input["dtype"]) if np.issubdtype(self._input["dtype"], np.integer) else None
        if limits is not None:
            values = np.clip(values, limits.min, limits.max)
        self._interpreter.set_tensor(self._input["index"], values.astype(self._input["dtype"]))
        self._interpreter.invoke()
        answer = self._interpreter.get_tensor(self._output["index"])[0]
        scale, zero_point = self._output["quantization"]
        return (answer.astype(np.float32) - zero_point) * scale if scale else answer.astype(np.float32)


def sample_indices(count: int, size: int = CHECK_IMAGES) -> np.ndarray:
    """`size` indices spread evenly over range(count), in order; every index when count <= size."""
    if count <= size:
        return np.arange(count)
    return np.unique(np.linspace(0, count - 1, size).round().astype(int))


def _sampled_chunks(examples_dir: str, image_size: int, sample: np.ndarray,
                    chunk: int = 64) -> Iterator[list[np.ndarray]]:
    """The sampled test images' uint8 pixels [1, S, S, 3], `chunk` at a time, in file order."""
    wanted, images = set(sample.tolist()), []
    for index, (image, _) in enumerate(_images(examples_dir, "test", image_size)):
        if index in wanted:
            images.append(image)
        if len(images) == chunk:
            yield images
            images = []
    if images:
        yield images


def _edge_answers(models: dict[str, bytes], examples_dir: str, sample: np.ndarray) -> dict[str, np.ndarray]:
    """Each model's probabilities [len(sample), classes] for the sampled test images.

    The models answer side by side, each on its own thread with one interpreter thread (an
    interpreter runs with the GIL released), and the sampled images are read once, a chunk at a
    time: the test split is never held in memory.
    """
    image_size = examples_info.read_stats(examples_dir).image_size
    edge_models = {variant: EdgeModel(model_content=content, threads=1) for variant, content in models.items()}
    answers: dict[str, list[np.ndarray]] = {variant: [] for variant in models}
    with ThreadPoolExecutor(len(edge_models)) as threads:
        for images in _sampled_chunks(examples_dir, image_size, sample):
            calls = {variant: threads.submit(lambda model=model: [model.probabilities(image) for image in images])
                     for variant, model in edge_models.items()}
            for variant, call in calls.items():
                answers[variant] += call.result()
    return {variant: np.stack(found) for variant, found in answers.items()}


def check(models: dict[str, bytes], examples_dir: str, expected_probabilities: np.ndarray,
          label_indices: np.ndarray) -> dict[str, dict]:
    """Each model's parity on a sample of the test split: what was measured, and whether it passed and why.

    Args:
        models: TFLite flatbuffers by variant.
        examples_dir: the examples artifact; its test split is what evaluate scored.
        expected_probabilities: the evaluated model's probabilities for each test image alone, in
            the split's order (evaluate's `single_view_probabilities`).
        label_indices: each test image's label index, in the same order.
    """
    sample = sample_indices(len(label_indices))
    answers_by_model = _edge_answers(models, examples_dir, sample)
    labels, expected = label_indices[sample], expected_probabilities[sample]
    model_accuracy = float(np.mean(expected.argmax(axis=1) == labels))
    results = {}
    for variant, content in models.items():
        answers = answers_by_model[variant]
        accuracy = float(np.mean(answers.argmax(axis=1) == labels))
        drop = model_accuracy - accuracy
        changed = int(np.sum(answers.argmax(axis=1) != expected.argmax(axis=1)))
        agreement = 1 - changed / len(sample)
        differences = np.abs(answers - expected).max(axis=1)
        result = {"file": FILES[variant], "bytes": len(content), "test_accuracy": round(accuracy, 6),
                  "model_accuracy": round(model_accuracy, 6), "test_images": len(sample),
                  "test_split_images": len(label_indices), "agreement": round(agreement, 6),
                  "classes_changed": changed,
                  "max_probability_difference": float(differences.max()),
                  "mean_probability_difference": float(differences.mean())}
        measured = f"on {len(sample)} test images, accuracy {accuracy:.4f} against the model's {model_accuracy:.4f}"
        if variant == FLOAT16:
            passed = bool(agreement >= FLOAT16_MIN_AGREEMENT and drop <= FLOAT16_MAX_ACCURACY_DROP)
            reason = f"{measured}, the same class on {agreement:.2%} (at least {FLOAT16_MIN_AGREEMENT:.1%} and at " \
                     f"most {FLOAT16_MAX_ACCURACY_DROP * 100:g} points lower)"
        else:
            passed = bool(drop <= INT8_MAX_ACCURACY_DROP)
            reason = f"{measured} (at most {INT8_MAX_ACCURACY_DROP * 100:g} point lower)"
        results[variant] = {**result, "passed": passed, "reason": ("kept: " if passed else "left out: ") + reason}
    return results


def export(model, examples_dir: str, version_dir: str, predictions_path: str) -> dict[str, dict]:
    """Converts, checks, and writes into `version_dir` the TFLite models that pass; returns every check.

    `predictions_path` is evaluate's test predictions: the models are checked against its answers.
    """
    image_size = examples_info.read_stats(examples_dir).image_size
    models = convert(model, image_size, examples_dir)
    with np.load(predictions_path, allow_pickle=False) as predictions:
        expected, label_indices = predictions["single_view_probabilities"], predictions["label_indices"]
    results = check(models, examples_dir, expected, label_indices)
    for variant, result in results.items():
        if result["passed"]:
            with open(os.path.join(version_dir, FILES[variant]), "wb") as file:
                file.write(models[variant])
    return results
