"""The seed-000 user's Keras script (three input scalings of Fashion-MNIST, as written in
../shared/seeds/000: Flatten -> Dense(128, relu) -> Dense(10, softmax), Adam, sparse
categorical cross-entropy, 5 epochs) with one added line: the scalelab callback.

    python examples/keras_fashion_mnist.py [--quick] [--db scalelab.db]
    scalelab explain --db scalelab.db keras-fashion-mnist

Runs on Keras 3's torch backend (pip install 'scalelab[keras]'). The data come from
scalelab's Fashion-MNIST loader instead of tf.keras.datasets (no TensorFlow needed); the
arrays are the same (uint8 pixels 0..255, labels 0..9). --quick trains on a subset.
"""

import argparse
import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import keras  # noqa: E402

import scalelab  # noqa: E402
import scalelab.keras  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="3000 training samples, 2 epochs (CI)")
    ap.add_argument("--db", default="scalelab.db")
    ap.add_argument("--study", default="keras-fashion-mnist")
    ap.add_argument("--probes", default="standard", choices=["none", "cheap", "standard", "full"])
    args = ap.parse_args(argv)
    keras.utils.set_random_seed(0)

    ds = scalelab.load_fashion_mnist()
    Xtrain, ytrain, Xtest, ytest = ds.X_train.reshape(-1, 28, 28), ds.y_train, ds.X_test.reshape(-1, 28, 28), ds.y_test
    epochs = 5
    if args.quick:
        Xtrain, ytrain, Xtest, ytest, epochs = Xtrain[:3000], ytrain[:3000], Xtest[:1000], ytest[:1000], 2

    findings = {}
    for label, factor in (("1/255", 255.0), ("1", 1.0), ("1/1000", 1000.0)):
        Xtrain_norm = Xtrain.copy() / factor
        Xtest_norm = Xtest.copy() / factor

        model = keras.models.Sequential([keras.layers.Flatten(),
                                         keras.layers.Dense(128, activation="relu"),
                                         keras.layers.Dense(10, activation="softmax")])

        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        diagnose = scalelab.keras.Diagnose(args.study, db=args.db, probes=args.probes,  # the added line
                                           level={"input.scale": label}, probe_data=(Xtrain_norm, ytrain))
        model.fit(Xtrain_norm, ytrain, epochs=epochs, callbacks=[diagnose], verbose=0 if args.quick else "auto")
        print("test loss", model.evaluate(Xtest_norm, ytest, verbose=0))
        findings[label] = [f.id for f in diagnose.findings]
    return findings


if __name__ == "__main__":
    main()
