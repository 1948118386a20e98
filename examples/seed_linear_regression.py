"""The program dlkernels grew from: a Keras linear regression, with tf.keras replaced
by dl and nothing else changed.  The targets lie on a plane (y = x0, or x1 - 1), so a
single Dense unit can fit them.

Run: python examples/seed_linear_regression.py
"""
import numpy as np

import dl

x = np.array([[1, 2], [2, 3], [3, 4], [4, 5]])
y = np.array([1, 2, 3, 4])

model = dl.Sequential([dl.layers.Dense(1, input_shape=(2,))])
model.compile(optimizer='sgd', loss='mean_squared_error')
model.fit(x, y, epochs=1000)
y_pred = model.predict(x)

print("predictions:", [round(float(v), 3) for v in y_pred.ravel()])
print("targets:    ", y.tolist())
print("backend:    ", model.backend.name)
