"""The hard prune and its layer-wise solvers, apart from the training that comes before.

- ``solvers``: pure tensor functions: ADMM reconstruction (Boza 2024), SparseGPT and Wanda, from a
  layer's weight and the Gram matrix of its inputs;
- ``calibrate``: the calibration pass: training rows in, each stage's Gram matrices out;
- ``reconstruct``: :func:`reconstruct` (every selected layer, in forward order) and the run's
  :func:`hard_prune` (the reconstruction if asked, then the masks fixed).

A home of its own because the training (the ``admm`` method's penalty in ``admm/penalty.py``, the
phases, the callbacks) never needs it until the one moment it prunes, and because "ADMM" means
another thing here: the solver of ``--prune-solver admm`` works on one layer's outputs, with no
training and its own ``rho``.
"""
