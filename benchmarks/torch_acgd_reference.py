"""The ICR authors' PyTorch ACGD (PyPI `CGDs`) on the ICR CIFAR DCGAN: time per step.

Run by `bench_game_step.py` in an interpreter that has torch and CGDs
(`pip install torch==2.13.0 CGDs`); prints one JSON object on its last line. The
architecture mirrors `gan_dynamics/models/icr_dcgan.py` (the ICR repository's CIFAR-10
DCGAN) and the loss is WGAN without penalty, D maximising E D(x) - E D(G(z)).
"""

import argparse
import json
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
from CGDs import ACGD


class Generator(nn.Module):
    def __init__(self, z_dim=128, dim=64):
        super().__init__()
        self.dim = dim
        self.linear = nn.Linear(z_dim, 4 * 4 * 4 * dim)
        self.bn0 = nn.BatchNorm1d(4 * 4 * 4 * dim)
        self.main = nn.Sequential(
            nn.ConvTranspose2d(4 * dim, 2 * dim, 4, 2, 1), nn.BatchNorm2d(2 * dim), nn.ReLU(True),
            nn.ConvTranspose2d(2 * dim, dim, 4, 2, 1), nn.BatchNorm2d(dim), nn.ReLU(True),
            nn.ConvTranspose2d(dim, 3, 4, 2, 1), nn.Tanh())

    def forward(self, z):
        h = F.relu(self.bn0(self.linear(z))).view(-1, 4 * self.dim, 4, 4)
        return self.main(h)


class Discriminator(nn.Module):
    def __init__(self, dim=64):
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv2d(3, dim, 4, 2, 1), nn.LeakyReLU(),
            nn.Conv2d(dim, 2 * dim, 4, 2, 1), nn.LeakyReLU(),
            nn.Conv2d(2 * dim, 4 * dim, 4, 2, 1), nn.LeakyReLU())
        self.linear = nn.Linear(4 * 4 * 4 * dim, 1)

    def forward(self, x):
        return self.linear(self.main(x).flatten(1))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-4)
    args = parser.parse_args()
    torch.manual_seed(0)
    gen, disc = Generator(), Discriminator()
    n_g = sum(p.numel() for p in gen.parameters())
    n_d = sum(p.numel() for p in disc.parameters())
    opt = ACGD(max_params=disc.parameters(), min_params=gen.parameters(), lr_max=args.lr,
               lr_min=args.lr, collect_info=True)
    real = torch.rand(args.batch, 3, 32, 32) * 2 - 1
    times, cpu_times, iters = [], [], []
    for step in range(args.steps + 1):
        z = torch.randn(args.batch, 128)
        start, cpu_start = time.perf_counter(), time.process_time()
        loss = disc(real).mean() - disc(gen(z)).mean()
        opt.zero_grad()
        opt.step(loss)
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu_start
        if step > 0:  # the first step allocates everything
            times.append(elapsed)
            cpu_times.append(cpu)
            iters.append(int(opt.get_info()["iter_num"]))

    # The Adam WGAN-GP baseline steps of the same models (Gulrajani et al. 2017).
    opt_d = torch.optim.Adam(disc.parameters(), lr=1e-4, betas=(0.5, 0.9))
    opt_g = torch.optim.Adam(gen.parameters(), lr=1e-4, betas=(0.5, 0.9))
    d_times, g_times = [], []
    for step in range(args.steps + 1):
        z = torch.randn(args.batch, 128)
        start = time.perf_counter()
        fake = gen(z).detach()
        eps = torch.rand(args.batch, 1, 1, 1)
        inter = (eps * real + (1 - eps) * fake).requires_grad_(True)
        grad = torch.autograd.grad(disc(inter).sum(), inter, create_graph=True)[0]
        gp = ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()
        d_loss = disc(fake).mean() - disc(real).mean() + 10 * gp
        opt_d.zero_grad()
        d_loss.backward()
        opt_d.step()
        mid = time.perf_counter()
        g_loss = -disc(gen(z)).mean()
        opt_g.zero_grad()
        g_loss.backward()
        opt_g.step()
        end = time.perf_counter()
        if step > 0:
            d_times.append(mid - start)
            g_times.append(end - mid)
    print(json.dumps({
        "torch": torch.__version__, "threads": torch.get_num_threads(),
        "params_gen": n_g, "params_disc": n_d,
        "acgd_s_per_step": times, "acgd_cpu_s_per_step": cpu_times,
        "acgd_cg_iterations": iters,
        "adam_wgan_gp_disc_s": d_times, "adam_gen_s": g_times,
    }))


if __name__ == "__main__":
    main()
