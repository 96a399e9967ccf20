"""The runners: each turns one kind of config into a run in a workdir.

- `toy_run`: toy games (bilinear, ICR quadratic, Dirac-GAN, covariance), many optimizers.
- `synthetic_run`: one synthetic 1-D manifold run (Fedus et al. 2018, Sec. 4).
- `sweep`: the synthetic runs of many seeds and learning rates, vmapped.
- `train`: image GANs (its config in `train_config`, state and step in `train_step`).
"""
