# Seed 003 (../../../shared/seeds/003_1e61429bd11d75cd.txt): "if I try to skip these two lines, my
# model predicts something entirely different". The course's Fashion-MNIST notebook the question
# quotes; the author skipped its two /255 lines: `python run.py 003 --drop /255.0`. Additions: `import
# scalelab.keras` and the callback on fit (marked "added").
import tensorflow as tf

import scalelab.keras  # added

mnist = tf.keras.datasets.fashion_mnist
(training_images, training_labels), (test_images, test_labels) = mnist.load_data()

training_images = training_images/255.0
test_images = test_images/255.0

model = tf.keras.models.Sequential([tf.keras.layers.Flatten(),
                                    tf.keras.layers.Dense(128, activation=tf.nn.relu),
                                    tf.keras.layers.Dense(10, activation=tf.nn.softmax)])

model.compile(optimizer = tf.optimizers.Adam(),
              loss = 'sparse_categorical_crossentropy',
              metrics=['accuracy'])

model.fit(training_images, training_labels, epochs=5,
          callbacks=[scalelab.keras.Diagnose("seed-003", level={"input.scale": "1" if training_images.max() > 1 else "1/255"})])  # added

model.evaluate(test_images, test_labels)

classifications = model.predict(test_images)
print(classifications[0])
print(test_labels[0])
