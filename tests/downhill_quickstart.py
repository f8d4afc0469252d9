"""downhill's documented quick start, with theano -> pytensor and nothing else changed.

Run by tests/test_downhill.py in a subprocess; the three parts are separated by
marker lines so the test can read what each printed.
"""

import sys

import numpy as np
import pytensor
import pytensor.tensor as TT

import hf.first_order as downhill

np.random.seed(int(sys.argv[1]) if len(sys.argv) > 1 else 0)

FLOAT = 'df'[pytensor.config.floatX == 'float32']


def rand(a, b):
    return np.random.randn(a, b).astype(FLOAT)


A, B, K = 20, 5, 3

# Set up a matrix factorization problem to optimize.
u = pytensor.shared(rand(A, K), name='u')
v = pytensor.shared(rand(K, B), name='v')
z = TT.matrix()
err = TT.sqr(z - TT.dot(u, v))
loss = err.mean() + abs(u).mean() + (v * v).mean()

# Minimize the regularized loss with respect to a data matrix.
y = np.dot(rand(A, K), rand(K, B)) + rand(A, B)

# Monitor during optimization.
monitors = (('err', err.mean()),
            ('|u|<0.1', (abs(u) < 0.1).mean()),
            ('|v|<0.1', (abs(v) < 0.1).mean()))

initial = [u.get_value(), v.get_value()]
f_loss = pytensor.function([z], loss)
print("PART1 initial loss", f_loss(y), flush=True)

downhill.minimize(
    loss=loss,
    train=[y],
    patience=0,
    batch_size=A,                 # Process y as a single batch.
    max_gradient_norm=1,          # Prevent gradient explosion!
    learning_rate=0.1,
    monitors=monitors,
    monitor_gradients=True)

# Print out the optimized coefficients u and basis v.
print('u =', u.get_value())
print('v =', v.get_value())
print("PART1 final loss", f_loss(y), flush=True)

u.set_value(initial[0])
v.set_value(initial[1])
print("PART2", flush=True)

opt = downhill.build(algo='rmsprop',
                     loss=loss,
                     monitors=monitors,
                     monitor_gradients=True)

for metrics, _ in opt.iterate(train=[[y]],
                              patience=0,
                              batch_size=A,
                              max_gradient_norm=1,
                              learning_rate=0.1):
    print(metrics)
print("PART2 final loss", f_loss(y), flush=True)

u.set_value(initial[0])
v.set_value(initial[1])
print("PART3", flush=True)

updates = downhill.build('rmsprop', loss).get_updates(
    batch_size=A, max_gradient_norm=1, learning_rate=0.1)
func = pytensor.function([z], loss, updates=list(updates))
for _ in range(100):
    print(func(y))  # Evaluate func and apply variable updates.
