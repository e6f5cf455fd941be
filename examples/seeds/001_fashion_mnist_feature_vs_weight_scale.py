# Seed 001 (../../../shared/seeds/001_de678c91cd5bbf0c.txt): features /255 with Glorot weights
# converge fast; raw features with the first layer's weights /255 do not. The author's notebook code
# as posted; additions: `import scalelab.keras` and the callback on fit (marked "added"); ported to
# Keras 3 (marked "Keras 3"): save_weights needs a name ending in .weights.h5. The author switched the
# two factors by hand: `python run.py 001 --set feature_scale_factor=1.0 --set weight_scale_factor=255.0`.
import numpy as np
import tensorflow as tf
from tensorflow.keras.models import Sequential
from tensorflow.keras.layers import Dense, Flatten
from tensorflow.keras.datasets import fashion_mnist
from tensorflow.keras.optimizers import SGD

import scalelab.keras  # added

# Get fmnist dataset
feature_scale_factor = 255.0 # Model converges with scale factor of 255.0
(X_opt, y_opt), (_, _) = fashion_mnist.load_data()
X_train, X_val = X_opt[:55000] / feature_scale_factor, X_opt[55000:] / feature_scale_factor
y_train, y_val = y_opt[:55000], y_opt[55000:]

fmnist_train = tf.data.Dataset.from_tensor_slices((X_train, y_train))
fmnist_train = fmnist_train.shuffle(5000).batch(32, drop_remainder=True)
fmnist_val = tf.data.Dataset.from_tensor_slices((X_val, y_val))
fmnist_val = fmnist_val.shuffle(5000).batch(32, drop_remainder=True)
print('\nDataset batch structure:')
print(fmnist_train.element_spec[0])

def my_glorot_initializer(shape, dtype=tf.float32):
    weight_scale_factor = 1.0
    stddev = tf.sqrt(2. / (shape[0] + shape[1]))
    return tf.random.normal(shape, stddev=stddev, dtype=dtype)/weight_scale_factor

#Build Model
mlp = Sequential([
    Flatten(input_shape=[28, 28], name='Flatten'),
    Dense(300, activation='relu', kernel_initializer=my_glorot_initializer, name='Input_Layer'),
    Dense(100, activation='relu', name='H1'),
    Dense(10, activation='softmax', name='Output_Layer')
], name='MLP')
print()
mlp.summary()
mlp.save_weights('model.weights.h5')  # Keras 3: was 'model.h5'

# Compile Model
mlp.compile(loss='sparse_categorical_crossentropy',
            optimizer=SGD(learning_rate=0.1),
            metrics=['accuracy'])

mlp.load_weights('model.weights.h5') # reset model to initialization state  # Keras 3: was 'model.h5'
history = mlp.fit(fmnist_train,
                  epochs=2,
                  validation_data=fmnist_val,
                  callbacks=[scalelab.keras.Diagnose("seed-001", level={"features": f"/{feature_scale_factor:g}"})])  # added
