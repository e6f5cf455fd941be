# Seed 002 (../../../shared/seeds/002_d2bd27c615ba7fbb.txt): the TensorFlow tutorial "basic
# classification" (the code it showed in 2018), with the two /255 lines and without them ("no
# normalization, my accuracy falls to 10%": `python run.py 002 --drop "/ 255.0"`). Additions: `import scalelab.keras` and the callback
# on fit (marked "added"); ported to Keras 3 (marked "Keras 3"): tf.train.AdamOptimizer() is gone.
import tensorflow as tf
from tensorflow import keras

import numpy as np

import scalelab.keras  # added

fashion_mnist = keras.datasets.fashion_mnist

(train_images, train_labels), (test_images, test_labels) = fashion_mnist.load_data()

class_names = ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat',
               'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot']

train_images = train_images / 255.0

test_images = test_images / 255.0

model = keras.Sequential([
    keras.layers.Flatten(input_shape=(28, 28)),
    keras.layers.Dense(128, activation=tf.nn.relu),
    keras.layers.Dense(10, activation=tf.nn.softmax)
])

model.compile(optimizer=tf.keras.optimizers.Adam(),  # Keras 3: was tf.train.AdamOptimizer()
              loss='sparse_categorical_crossentropy',
              metrics=['accuracy'])

model.fit(train_images, train_labels, epochs=5,
          callbacks=[scalelab.keras.Diagnose("seed-002", level={"input.scale": "1" if train_images.max() > 1 else "1/255"})])  # added

test_loss, test_acc = model.evaluate(test_images, test_labels)

print('Test accuracy:', test_acc)
