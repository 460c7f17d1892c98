"""The int8 bias correction: weights rounded as int8 will round them, the mean shift absorbed, all restored after."""

import keras
import numpy as np
import pytest

from components.push.int8_correction import conv_batchnorm_pairs, corrected_for_int8


def network_with_large_batchnorm_gains() -> keras.Model:
    """Conv -> BN -> ReLU -> depthwise -> BN -> pooling, with BatchNorm gains of up to 40, as MobileNet's."""
    rng = np.random.default_rng(0)
    inputs = keras.Input((12, 12, 3))
    x = keras.layers.Conv2D(6, 3, use_bias=False, name="conv")(inputs)
    x = keras.layers.BatchNormalization(name="conv_bn")(x)
    x = keras.layers.ReLU(6.0)(x)
    x = keras.layers.DepthwiseConv2D(3, use_bias=False, name="dw")(x)
    x = keras.layers.BatchNormalization(name="dw_bn")(x)
    network = keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(x), name="network")
    for name in ("conv_bn", "dw_bn"):
        layer = network.get_layer(name)
        gamma, beta, mean, variance = layer.get_weights()
        layer.set_weights([rng.uniform(1, 40, gamma.shape).astype("float32"), beta, mean,
                           rng.uniform(0.5, 2, variance.shape).astype("float32")])
    images = keras.Input((12, 12, 3))
    scaled = keras.layers.Rescaling(1 / 255)(images)
    return keras.Model(images, network(scaled), name="classifier")  # a chain of layers around it, as the project's


def test_the_shift_is_absorbed_the_weights_are_int8_steps_and_everything_comes_back():
    model = network_with_large_batchnorm_gains()
    network = model.get_layer("network")
    images = np.random.default_rng(1).uniform(0, 255, (16, 12, 12, 3)).astype("float32")
    float_features = model(images).numpy()
    float_weights = [weights.copy() for weights in model.get_weights()]

    with corrected_for_int8(model, images) as corrected:
        assert corrected == 2
        conv, batchnorm = network.get_layer("conv"), network.get_layer("conv_bn")
        gamma, _, _, variance = batchnorm.get_weights()
        folded = conv.get_weights()[0] * gamma / np.sqrt(variance + batchnorm.epsilon)
        steps = folded / (np.abs(folded).max(axis=(0, 1, 2)) / 127)
        np.testing.assert_allclose(steps, np.round(steps), atol=1e-3)  # exactly what int8 will hold
        corrected_features = model(images).numpy()

    # Rounding moved each feature; the correction put each one's mean over these images back.
    assert np.abs(corrected_features - float_features).max() > 1e-4
    np.testing.assert_allclose(corrected_features.mean(axis=0), float_features.mean(axis=0), rtol=1e-4, atol=1e-4)
    for restored, saved in zip(model.get_weights(), float_weights):
        np.testing.assert_array_equal(restored, saved)


def test_a_convolution_that_another_layer_also_reads_is_left_alone():
    inputs = keras.Input((8, 8, 4))
    conv = keras.layers.Conv2D(4, 1, use_bias=False, name="shared")(inputs)
    x = keras.layers.BatchNormalization(name="bn")(conv)
    x = keras.layers.Add()([x, conv])
    plain = keras.layers.Conv2D(4, 1, use_bias=False, name="plain")(x)
    network = keras.Model(inputs, keras.layers.BatchNormalization(name="plain_bn")(plain))

    assert [(c.name, b.name) for c, b in conv_batchnorm_pairs(network)] == [("plain", "plain_bn")]


@pytest.mark.parametrize("layer", ["conv", "dw"])
def test_restored_even_when_the_block_fails(layer):
    model = network_with_large_batchnorm_gains()
    saved = model.get_layer("network").get_layer(layer).get_weights()[0].copy()
    images = np.zeros((2, 12, 12, 3), "float32")
    with pytest.raises(RuntimeError), corrected_for_int8(model, images):
        raise RuntimeError("conversion failed")
    np.testing.assert_array_equal(model.get_layer("network").get_layer(layer).get_weights()[0], saved)


def test_a_model_that_cannot_be_replayed_layer_by_layer_is_left_alone():
    network = network_with_large_batchnorm_gains().get_layer("network")
    images = keras.Input((12, 12, 3))
    model = keras.Model(images, network(images / 255.0))  # a bare operation, not a layer
    with corrected_for_int8(model, np.ones((2, 12, 12, 3), "float32")) as corrected:
        assert corrected == 0


def branching_network() -> keras.Model:
    """Two conv -> BN branches added, as residual bases (MobileNetV2, ResNet) have."""
    inputs = keras.Input((12, 12, 3))
    left = keras.layers.BatchNormalization(name="left_bn")(keras.layers.Conv2D(4, 3, use_bias=False)(inputs))
    right = keras.layers.BatchNormalization(scale=False, name="right_bn")(
        keras.layers.Conv2D(4, 3, use_bias=False)(inputs))
    return keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(keras.layers.Add()([left, right])))


def single_pair_network() -> keras.Model:
    inputs = keras.Input((12, 12, 3))
    x = keras.layers.BatchNormalization(center=False)(keras.layers.DepthwiseConv2D(3, use_bias=False)(inputs))
    return keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(x))


@pytest.mark.parametrize("network, pairs", [(branching_network, 2), (single_pair_network, 1)])
def test_branching_bases_single_pairs_and_batchnorms_without_scale_or_centre(network, pairs):
    keras.utils.set_random_seed(0)
    images = keras.Input((12, 12, 3))
    model = keras.Model(images, network()(keras.layers.Rescaling(1 / 255)(images)))
    pixels = np.random.default_rng(2).uniform(0, 255, (8, 12, 12, 3)).astype("float32")
    expected = model(pixels).numpy()
    with corrected_for_int8(model, pixels) as corrected:
        assert corrected == pairs
        np.testing.assert_allclose(model(pixels).numpy().mean(axis=0), expected.mean(axis=0), rtol=1e-4, atol=1e-4)


def test_a_base_without_batchnorm_is_left_as_it_is():
    inputs = keras.Input((12, 12, 3))
    network = keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3)(inputs)))
    images = keras.Input((12, 12, 3))
    model = keras.Model(images, network(keras.layers.Rescaling(1 / 255)(images)))
    saved = [weights.copy() for weights in model.get_weights()]
    with corrected_for_int8(model, np.ones((2, 12, 12, 3), "float32")) as corrected:
        assert corrected == 0
        for weights, before in zip(model.get_weights(), saved):
            np.testing.assert_array_equal(weights, before)
