"""A small convnet on scikit-learn's bundled 8x8 handwritten digits (1797 images).

The images as (8, 8, 1) arrays: Conv2D(32, 3x3, "same", ReLU), BatchNormalization,
Conv2D(64, 3x3, "same", ReLU), 2x2 max pooling, Flatten, Dropout(0.5) and a softmax
Dense, trained with Adam whose learning rate follows a cosine decay from 2e-3 to 0 over
the run.  On the same split as examples/digits.py (a quarter of the images held out,
stratified, seed 0) it reaches 99.3% test accuracy where that MLP reaches 98%
(99.1% to 99.8% over seeds 0 to 5), in about 6 s on two cores.  The validation loss
starts high and falls over the first ten epochs while BatchNormalization's moving
statistics (momentum 0.99, used at inference) catch up with the batches' statistics.

Run: python examples/digits_convnet.py [--epochs 20] [--backend cython] [--seed 0]
Writes digits_convnet_training.png; needs scikit-learn and matplotlib
(pip install -e ".[examples]").
"""
import argparse
import math
import time

import dl
from dl import layers


def build(backend=None):
    return dl.Sequential([
        dl.Input(shape=(8, 8, 1)),
        layers.Conv2D(32, (3, 3), padding="same", activation="relu"),
        layers.BatchNormalization(),
        layers.Conv2D(64, (3, 3), padding="same", activation="relu"),
        layers.MaxPooling2D((2, 2)),
        layers.Flatten(),
        layers.Dropout(0.5),
        layers.Dense(10, activation="softmax"),
    ], name="digits_convnet", backend=backend)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--backend", default=None, help="numpy, cython or cuda")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--plot", default="digits_convnet_training.png",
                        help="PNG of the training curves ('' to skip)")
    args = parser.parse_args()

    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = (digits.images / 16.0).astype("float32")[..., None]     # (1797, 8, 8, 1) in [0, 1]
    x_train, x_test, y_train, y_test = train_test_split(
        x, digits.target, test_size=0.25, random_state=0, stratify=digits.target)

    dl.utils.set_random_seed(args.seed)
    model = build(args.backend)
    validation_split = 0.1
    # the optimizer's steps over the whole run: the schedule reaches 0 at the last one
    steps = math.ceil(len(x_train) * (1 - validation_split) / args.batch_size) * args.epochs
    schedule = dl.optimizers.schedules.CosineDecay(2e-3, decay_steps=steps)
    model.compile(optimizer=dl.optimizers.Adam(learning_rate=schedule),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.summary()

    start = time.perf_counter()
    history = model.fit(x_train, y_train, epochs=args.epochs, batch_size=args.batch_size,
                        validation_split=validation_split, verbose=2)
    seconds = time.perf_counter() - start
    loss, accuracy = model.evaluate(x_test, y_test, verbose=0)
    print(f"test accuracy: {accuracy:.4f}  test loss: {loss:.4f}  "
          f"({args.epochs} epochs in {seconds:.2f} s on the {model.backend.name} backend)")

    if args.plot:
        try:
            import matplotlib
            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            print("matplotlib is not installed: no training-curve PNG")
            return accuracy
        h = history.history
        fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
        a1.plot(h["loss"], label="train")
        a1.plot(h["val_loss"], label="validation")
        a1.set(xlabel="epoch", ylabel="loss", yscale="log")
        a1.legend()
        a2.plot(h["accuracy"], label="train")
        a2.plot(h["val_accuracy"], label="validation")
        a2.set(xlabel="epoch", ylabel="accuracy")
        a2.legend()
        fig.suptitle(f"8x8 digits convnet: test accuracy {accuracy:.3f}")
        fig.tight_layout()
        fig.savefig(args.plot, dpi=100)
        plt.close(fig)
        print(f"training curves written to {args.plot}")
    return accuracy


if __name__ == "__main__":
    main()
