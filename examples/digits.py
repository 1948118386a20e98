"""An MLP on scikit-learn's bundled 8x8 handwritten digits (1797 images, 10 classes).

Run: python examples/digits.py [--epochs 60] [--backend cython] [--plot curve.png]
Needs scikit-learn (bundled data set, no download); draws the training curve to a PNG
when matplotlib is installed.
"""
import argparse
import time

import dl


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--backend", default=None, help="numpy, cython or cuda")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--plot", default="digits_training.png",
                        help="PNG path for the training curve ('' to skip)")
    args = parser.parse_args()

    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = (digits.images / 16.0).astype("float32")          # (1797, 8, 8) in [0, 1]
    x_train, x_test, y_train, y_test = train_test_split(
        x, digits.target, test_size=0.25, random_state=args.seed, stratify=digits.target)

    dl.utils.set_random_seed(args.seed)
    model = dl.Sequential([
        dl.Input(shape=(8, 8)),
        dl.layers.Flatten(),
        dl.layers.Dense(256, activation="relu"),
        dl.layers.Dropout(0.3),
        dl.layers.Dense(64, activation="relu"),
        dl.layers.Dense(10, activation="softmax"),
    ], backend=args.backend)
    model.compile(optimizer=dl.optimizers.Adam(learning_rate=2e-3),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.summary()

    start = time.perf_counter()
    history = model.fit(x_train, y_train, epochs=args.epochs, batch_size=args.batch_size,
                        validation_split=0.1, verbose=2)
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
        fig.suptitle(f"8x8 digits MLP: test accuracy {accuracy:.3f}")
        fig.tight_layout()
        fig.savefig(args.plot, dpi=100)
        print(f"training curve written to {args.plot}")
    return accuracy


if __name__ == "__main__":
    main()
