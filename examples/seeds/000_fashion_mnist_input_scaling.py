# Seed 000 (../../../shared/seeds/000_fad00fb6f7ed16d1.txt): "Why is it necessary to rescale?" The
# author's three scripts as they posted them (/255, raw pixels, /1000), run one after the other;
# the only additions are `import scalelab.keras` and the callback on each fit (marked "added").
# Run it as `python run.py 000` (a cut-down data set: `python run.py 000 --quick`), then
# `scalelab explain --db scalelab.db seed-000`.
import tensorflow as tf

import scalelab.keras  # added

(Xtrain, ytrain) ,  (Xtest, ytest) = tf.keras.datasets.fashion_mnist.load_data()

Xtrain_norm = Xtrain.copy()/255.0
Xtest_norm = Xtest.copy()/255.0

model = tf.keras.models.Sequential([tf.keras.layers.Flatten(),
                                    tf.keras.layers.Dense(128, activation="relu"),
                                    tf.keras.layers.Dense(10, activation="softmax")])

model.compile(optimizer = "adam", loss = "sparse_categorical_crossentropy")
model.fit(Xtrain_norm, ytrain, epochs=5,
          callbacks=[scalelab.keras.Diagnose("seed-000", level={"input.scale": "1/255"})])  # added
model.evaluate(Xtest_norm, ytest)

(Xtrain, ytrain) ,  (Xtest, ytest) = tf.keras.datasets.fashion_mnist.load_data()

model2 = tf.keras.models.Sequential([tf.keras.layers.Flatten(),
                                    tf.keras.layers.Dense(128, activation="relu"),
                                    tf.keras.layers.Dense(10, activation="softmax")])

model2.compile(optimizer = "adam", loss = "sparse_categorical_crossentropy")
model2.fit(Xtrain, ytrain, epochs=5,
           callbacks=[scalelab.keras.Diagnose("seed-000", level={"input.scale": "1"})])  # added
model2.evaluate(Xtest, ytest)

(Xtrain, ytrain) ,  (Xtest, ytest) = tf.keras.datasets.fashion_mnist.load_data()

Xtrain_norm = Xtrain.copy()/1000.0
Xtest_norm = Xtest.copy()/1000.0

model3 = tf.keras.models.Sequential([tf.keras.layers.Flatten(),
                                    tf.keras.layers.Dense(128, activation="relu"),
                                    tf.keras.layers.Dense(10, activation="softmax")])

model3.compile(optimizer = "adam", loss = "sparse_categorical_crossentropy")
model3.fit(Xtrain_norm, ytrain, epochs=5,
           callbacks=[scalelab.keras.Diagnose("seed-000", level={"input.scale": "1/1000"})])  # added
model3.evaluate(Xtest_norm, ytest)
