"""Diagnostics of GAN training dynamics: the local geometry of the game at a point.

- `field`: the simultaneous gradient field v = (∇x f, ∇y g) of any `Game` over pytrees,
  its Jacobian-vector products (`jax.linearize`) and transposes, dense Jacobians.
- `spectrum`: Krylov-Schur Arnoldi and thick-restart Lanczos in pure JAX (jitted), the
  ARPACK reference, dense spectra.
- `analysis`: the field's eigenvalues, each player's Hessian extremes, the symmetric and
  antisymmetric parts of the Jacobian, the CGD/ACGD system's conditioning.
- `path_angle`: Berard et al. 2020's path-angle between two parameter points.
- `report`: the diagnostics of one point, as JSON-ready scalars (used by the image
  runner's hooks, `runners.image_diagnostics`, and experiments/diagnose.py).

docs/diagnostics.md says what each quantity is and how to read it.
"""
