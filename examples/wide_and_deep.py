"""A wide-and-deep regression with two inputs, on scikit-learn's bundled diabetes data.

scikit-learn ships the diabetes set (442 patients, 10 baseline variables, a disease
progression score a year later) without a download; its California housing copy
is fetched from the network, so this example uses diabetes.  Inputs:

- ``numeric``: the nine continuous variables (age, BMI, blood pressure, six serum
  measurements), standardised: the "wide" part goes straight to the output through a
  linear Dense;
- ``categories``: two categorical ids, the patient's sex (2 values) and age decile
  (10 values), each looked up in an Embedding: with the numbers, the "deep" part.

The two parts are added into one prediction (``wide + deep``), trained with Adam on the
mean squared error of the standardised target, with L2 penalties, dropout and early
stopping on a validation split: the data are small (331 training patients) and noisy,
and a least-squares linear regression reaches R^2 0.36 on this test split, which the
model matches (0.35 with the default seed), no better: the example shows the
two-input graph, not a gain on this data.

Run: python examples/wide_and_deep.py [--epochs 300] [--backend cython]
Writes wide_and_deep_training.png (the curves and test predictions) and
wide_and_deep_model.png (the graph, dl.utils.plot_model); needs scikit-learn and
matplotlib (pip install -e ".[examples]").
"""
import argparse
import time

import numpy as np

import dl
from dl import layers


def load(seed):
    from sklearn.datasets import load_diabetes
    from sklearn.model_selection import train_test_split

    data = load_diabetes()                   # features centred and scaled by sklearn
    x, y = data.data.astype(np.float32), data.target.astype(np.float32)
    sex = (x[:, 1] > 0).astype(np.int64)                    # two values in the data
    age = x[:, 0]
    decile = np.searchsorted(np.quantile(age, np.linspace(0.1, 0.9, 9)), age)
    categories = np.stack([sex, 2 + decile], axis=1)       # ids 0-1 sex, 2-11 decile
    numeric = np.delete(x, [1], axis=1)
    numeric = (numeric - numeric.mean(0)) / numeric.std(0)
    target = ((y - y.mean()) / y.std())[:, None]
    return train_test_split(numeric, categories, target, test_size=0.25,
                            random_state=seed), (y.mean(), y.std())


def build(backend):
    numeric = dl.Input(shape=(9,), name="numeric")
    categories = dl.Input(shape=(2,), dtype="int32", name="categories")
    wide = layers.Dense(1, name="wide")(numeric)
    embedded = layers.Flatten(name="embedded")(
        layers.Embedding(12, 2, name="category_embedding")(categories))
    h = layers.Concatenate(name="deep_in")([numeric, embedded])
    h = layers.Dense(8, activation="relu", kernel_regularizer=dl.regularizers.L2(1e-2),
                     name="deep_hidden")(h)
    h = layers.Dropout(0.5, name="dropout")(h)
    deep = layers.Dense(1, kernel_regularizer=dl.regularizers.L2(1e-2), name="deep")(h)
    output = layers.Add(name="wide_plus_deep")([wide, deep])
    return dl.Model(inputs={"numeric": numeric, "categories": categories},
                    outputs=output, name="wide_and_deep", backend=backend)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=500)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--backend", default=None, help="numpy, cython or cuda")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--plot", default="wide_and_deep_training.png",
                        help="PNG of the training curves ('' to skip)")
    parser.add_argument("--graph", default="wide_and_deep_model.png",
                        help="PNG of the model's graph ('' to skip)")
    args = parser.parse_args()

    (num_tr, num_te, cat_tr, cat_te, y_tr, y_te), (mean, std) = load(args.seed)
    dl.utils.set_random_seed(args.seed)
    model = build(args.backend)
    model.compile(optimizer=dl.optimizers.Adam(learning_rate=3e-3), loss="mse",
                  metrics=["mae"])
    model.summary()
    start = time.perf_counter()
    # small data: stop when the validation loss stops improving, keep the best weights
    stop = dl.callbacks.EarlyStopping(monitor="val_loss", patience=30,
                                      restore_best_weights=True)
    history = model.fit({"numeric": num_tr, "categories": cat_tr}, y_tr,
                        epochs=args.epochs, batch_size=args.batch_size,
                        validation_split=0.15, callbacks=[stop], verbose=0)
    seconds = time.perf_counter() - start
    test = {"numeric": num_te, "categories": cat_te}
    loss, mae = model.evaluate(test, y_te, verbose=0)
    pred = model.predict(test, verbose=0)
    r2 = 1 - np.sum((pred - y_te) ** 2) / np.sum((y_te - y_te.mean()) ** 2)
    epochs = len(history.history["loss"])
    print(f"test MSE {loss:.4f} (standardised), MAE {mae * std:.1f} points, R^2 {r2:.3f} "
          f"({epochs} epochs in {seconds:.2f} s on the {model.backend.name} backend)")

    if args.graph:
        try:
            print(f"model graph written to "
                  f"{dl.utils.plot_model(model, args.graph, show_shapes=True)}")
        except ImportError as exc:
            print(exc)
    if args.plot:
        try:
            import matplotlib
            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            print("matplotlib is not installed: no PNG")
            return r2
        h = history.history
        fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
        a1.plot(h["loss"], label="train")
        a1.plot(h["val_loss"], label="validation")
        a1.set(xlabel="epoch", ylabel="MSE (standardised target)", yscale="log")
        a1.legend()
        a2.scatter(y_te * std + mean, pred * std + mean, s=12)
        lims = [25, 350]
        a2.plot(lims, lims, color="grey", lw=1)
        a2.set(xlabel="disease progression", ylabel="predicted", xlim=lims, ylim=lims)
        fig.suptitle(f"wide and deep on diabetes: test R^2 {r2:.3f}")
        fig.tight_layout()
        fig.savefig(args.plot, dpi=100)
        print(f"training curves written to {args.plot}")
    return r2


if __name__ == "__main__":
    main()
