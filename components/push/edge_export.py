"""Edge export: TFLite models beside the SavedModel, each kept only if it answers like the evaluated model.

Both take what the shared `decode_and_resize` gives, one image at a time: uint8 pixels [1, S, S, 3]
in [0, 255], so a device runs the same decode and resize as serving and then the model. Both give
`probabilities` [1, classes]: float32 from the float16 model, uint8 with the output's quantization
(scale, zero point) from the int8 one.

- float16: weights stored as float16, computed in float32; kept when it gives every test image
  the model's class, with probabilities within FLOAT16_TOLERANCE of its. Rounding the
  weights to float16 moves a MobileNet's probabilities by about 1e-3 on average and up to 2e-2
  where the head's sigmoid is steepest, so a tighter bound would refuse every such model.
- int8: weights and activations int8, input and output uint8, calibrated on up to
  REPRESENTATIVE_IMAGES training images after a bias correction for int8 weight rounding
  (`int8_correction`); kept when its test accuracy is at most INT8_MAX_ACCURACY_DROP below the
  model's.
Both are compared with the model answering one image, as they do: with test-time augmentation,
the SavedModel averages views and a TFLite model does not.
"""

import itertools
import os
from typing import Iterator

import numpy as np
import tensorflow as tf

from components.common import examples_info
from components.common.image_batches import image_batches
from components.common.modeling import class_probabilities
from components.push.int8_correction import corrected_for_int8

FLOAT16 = "float16"
INT8 = "int8"
FILES = {FLOAT16: "model_float16.tflite", INT8: "model_int8.tflite"}
REPRESENTATIVE_IMAGES = 100
# Of those, the images the int8 bias correction measures its shifts on (see `int8_correction`):
# 20 and 100 gave the same corrections' accuracy, and each image costs a pass per corrected layer.
CORRECTION_IMAGES = 32
FLOAT16_TOLERANCE = 0.05
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

    def __init__(self, model_content: bytes | None = None, model_path: str | None = None):
        self._interpreter = tf.lite.Interpreter(model_content=model_content, model_path=model_path)
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


def check(models: dict[str, bytes], examples_dir: str, expected_probabilities: np.ndarray,
          evaluated_accuracy: float) -> dict[str, dict]:
    """Each model's parity on the test split: what was measured, and whether it passed and why.

    Args:
        models: TFLite flatbuffers by variant.
        examples_dir: the examples artifact; its test split is what evaluate scored.
        expected_probabilities: the model's probabilities for the test split, in its order, one
            view per image (`reference_answers`).
        evaluated_accuracy: the model's test accuracy on those answers.
    """
    image_size = examples_info.image_size(examples_dir)
    edge_models = {variant: EdgeModel(model_content=content) for variant, content in models.items()}
    # One pass, every model answering each image in turn: the test split is never held in memory
    # (at 10,000 test images it was 1.5 GB of pixels).
    labels, answers_by_model = [], {variant: [] for variant in models}
    for image, label in _images(examples_dir, "test", image_size):
        labels.append(label)
        for variant, model in edge_models.items():
            answers_by_model[variant].append(model.probabilities(image))
    labels = np.array(labels)
    results = {}
    for variant, content in models.items():
        answers = np.stack(answers_by_model[variant])
        accuracy = float(np.mean(answers.argmax(axis=1) == labels))
        result = {"file": FILES[variant], "bytes": len(content), "test_accuracy": round(accuracy, 6),
                  "test_images": len(labels)}
        if variant == FLOAT16:
            expected = expected_probabilities[: len(labels)]
            differences = np.abs(answers - expected).max(axis=1)
            changed = int(np.sum(answers.argmax(axis=1) != expected.argmax(axis=1)))
            result.update(max_probability_difference=float(differences.max()),
                          mean_probability_difference=float(differences.mean()), classes_changed=changed)
            passed = bool(changed == 0 and differences.max() <= FLOAT16_TOLERANCE)
            reason = f"{changed} test image(s) change class; probabilities within {differences.max():.1e} of the " \
                     f"SavedModel's, {differences.mean():.1e} on average (at most {FLOAT16_TOLERANCE:g} and no change)"
        else:
            drop = evaluated_accuracy - accuracy
            passed = bool(drop <= INT8_MAX_ACCURACY_DROP)
            reason = f"test accuracy {accuracy:.4f} against {evaluated_accuracy:.4f} " \
                     f"(at most {INT8_MAX_ACCURACY_DROP:.0%} lower)"
        results[variant] = {**result, "passed": passed, "reason": ("kept: " if passed else "left out: ") + reason}
    return results


def reference_answers(model, examples_dir: str) -> tuple[np.ndarray, float]:
    """The model's own probabilities on the test images, one view each as a TFLite model answers, and its accuracy.

    With test-time augmentation the evaluated model averages views; a TFLite model takes one
    image, so it is compared with the same model on that one image.
    """
    image_size = examples_info.image_size(examples_dir)
    probabilities, labels = [], []
    for images, label_indices in image_batches(examples_dir, "test", image_size, 64):
        probabilities.append(class_probabilities(model(images, training=False)).numpy())
        labels.append(label_indices.numpy())
    probabilities = np.concatenate(probabilities)
    return probabilities, float(np.mean(probabilities.argmax(axis=1) == np.concatenate(labels)))


def export(model, examples_dir: str, version_dir: str) -> dict[str, dict]:
    """Converts, checks, and writes into `version_dir` the TFLite models that pass; returns every check."""
    image_size = examples_info.image_size(examples_dir)
    models = convert(model, image_size, examples_dir)
    results = check(models, examples_dir, *reference_answers(model, examples_dir))
    for variant, result in results.items():
        if result["passed"]:
            with open(os.path.join(version_dir, FILES[variant]), "wb") as file:
                file.write(models[variant])
    return results
