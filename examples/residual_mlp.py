"""A residual MLP written as a subclassed model (class ResidualMLP(dl.Model) with a
call method), on scikit-learn's bundled 8x8 digits.

``call`` composes dl layers and dl.ops: an input projection, blocks of
``h = h + Dense(relu)(LayerNormalization(h))`` (pre-normalised residual blocks), dropout
and a softmax classifier.  dl traces ``call`` once, on the first data's shape, into the
functional graph it trains (dl.utils.plot_model draws it).

Run: python examples/residual_mlp.py [--epochs 40] [--blocks 3] [--backend cython]
Writes residual_mlp_training.png and residual_mlp_model.png; needs scikit-learn and
matplotlib (pip install -e ".[examples]").
"""
import argparse
import time

import dl
from dl import layers, ops


class ResidualMLP(dl.Model):
    """``blocks`` residual blocks of ``width`` units between an input projection and
    a softmax over ``classes``."""

    def __init__(self, width=128, blocks=3, classes=10, dropout=0.2, **kwargs):
        super().__init__(**kwargs)
        self.width, self.blocks, self.classes, self.dropout = width, blocks, classes, dropout
        self.flatten = layers.Flatten()
        self.project = layers.Dense(width, activation="relu")
        self.norms = [layers.LayerNormalization() for _ in range(blocks)]
        self.denses = [layers.Dense(width, activation="relu") for _ in range(blocks)]
        self.drop = layers.Dropout(dropout)
        self.classify = layers.Dense(classes, activation="softmax")

    def call(self, inputs, training=False):
        h = self.project(self.flatten(inputs))
        for norm, dense in zip(self.norms, self.denses):
            h = ops.add(h, dense(norm(h)))           # h + f(h): the residual
        return self.classify(self.drop(h, training=training))

    def get_config(self):
        return {"width": self.width, "blocks": self.blocks, "classes": self.classes,
                "dropout": self.dropout}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--blocks", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--backend", default=None, help="numpy, cython or cuda")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--plot", default="residual_mlp_training.png",
                        help="PNG of the training curves ('' to skip)")
    parser.add_argument("--graph", default="residual_mlp_model.png",
                        help="PNG of the traced graph ('' to skip)")
    args = parser.parse_args()

    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    digits = load_digits()
    x = (digits.images / 16.0).astype("float32")
    x_train, x_test, y_train, y_test = train_test_split(
        x, digits.target, test_size=0.25, random_state=args.seed, stratify=digits.target)

    dl.utils.set_random_seed(args.seed)
    model = ResidualMLP(blocks=args.blocks, backend=args.backend)
    model.compile(optimizer=dl.optimizers.Adam(learning_rate=1e-3),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    start = time.perf_counter()
    history = model.fit(x_train, y_train, epochs=args.epochs, batch_size=args.batch_size,
                        validation_split=0.1, verbose=0)       # traced on this data
    seconds = time.perf_counter() - start
    model.summary()
    loss, accuracy = model.evaluate(x_test, y_test, verbose=0)
    print(f"test accuracy: {accuracy:.4f}  test loss: {loss:.4f}  ({args.epochs} epochs in "
          f"{seconds:.2f} s on the {model.backend.name} backend)")

    if args.graph:
        try:
            print(f"traced graph written to {dl.utils.plot_model(model, args.graph)}")
        except ImportError as exc:
            print(exc)
    if args.plot:
        try:
            import matplotlib
            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            print("matplotlib is not installed: no PNG")
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
        fig.suptitle(f"residual MLP ({args.blocks} blocks, subclassed): test accuracy "
                     f"{accuracy:.3f}")
        fig.tight_layout()
        fig.savefig(args.plot, dpi=100)
        print(f"training curves written to {args.plot}")
    return accuracy


if __name__ == "__main__":
    main()
