"""What Keras's test files build their cases from, written for dl: the synthetic
classification data of ``keras.src.testing.test_utils.get_test_data`` (class templates
plus unit Gaussian noise, balanced classes), and the per-file case registry."""
import numpy as np


def get_test_data(train_samples, test_samples, input_shape, num_classes, seed=0):
    """``(x_train, y_train), (x_test, y_test)``: balanced classes, each sample its
    class's random template plus N(0, 1) noise, float32 inputs, int labels."""
    rng = np.random.default_rng(seed)
    total = train_samples + test_samples
    y = np.arange(total) % num_classes
    templates = 2 * num_classes * rng.random((num_classes,) + tuple(input_shape))
    x = (templates[y] + rng.normal(size=(total,) + tuple(input_shape))).astype(np.float32)
    order = rng.permutation(total)
    x, y = x[order], y[order]
    return (x[:train_samples], y[:train_samples]), (x[train_samples:], y[train_samples:])
