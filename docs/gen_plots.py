"""Plot the basis functions of every family with the package's own layers (``docs/assets/bases/<family>.png``).

    python docs/gen_plots.py

Each curve is one feature of a freshly built 1-input layer, ``layer.basis`` evaluated on a grid of the values it
receives (after the family's squash), so the pictures show exactly what the code computes.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch

from kanconvs.bases.wavelet import WAVELETS
from kanconvs.layers import create_conv

OUT = Path(__file__).resolve().parent / "assets" / "bases"
#: family -> (title, layer options, plotted input range: the values the basis sees)
FAMILIES = {
    "kan": ("B-splines (KAN), order 3, grid 5", {}, (-1.6, 1.6)),
    "fastkan": ("Gaussian RBFs (FastKAN), grid 8", {}, (-2.5, 2.5)),
    "kaln": ("Legendre (KALN), degree 3", {}, (-1.0, 1.0)),
    "kacn": ("Chebyshev (KACN), degree 3", {}, (-1.0, 1.0)),
    "kagn": ("Gram (KAGN), degree 3, β at init, SiLU applied", {}, (-1.0, 1.0)),
    "kajn": ("Jacobi (KAJN), α = β = 1, degree 3", {}, (-1.0, 1.0)),
    "kabn": ("Bernstein (KABN), degree 3", {}, (0.0, 1.0)),
    "kahn": ("Hermite (KAHN), degree 3", {}, (-1.0, 1.0)),
    "relukan": ("ReLU bumps (ReLU-KAN), grid 5, k = 3", {}, (-0.2, 1.2)),
}


def plot_family(name: str) -> Path:
    title, options, (low, high) = FAMILIES[name]
    layer = create_conv(name, 1, 1, 1, ndim=1, **options)
    x = torch.linspace(low, high, 400)
    with torch.no_grad():
        features = layer.basis(x.view(1, 1, -1))[0, 0]  # (K, points)
    fig, ax = plt.subplots(figsize=(5, 3), dpi=100)
    for k, curve in enumerate(features):
        ax.plot(x, curve, label=f"{k}")
    ax.set(title=title, xlabel="input to the basis (after the squash)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2, title="function", title_fontsize=7)
    fig.tight_layout()
    path = OUT / f"{name}.png"
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_wavelets() -> Path:
    u = torch.linspace(-6, 6, 600)
    fig, ax = plt.subplots(figsize=(5, 3), dpi=100)
    for name, psi in WAVELETS.items():
        ax.plot(u, psi(u), label=name)
    ax.set(title="Mother wavelets (WavKAN): ψ((x − t) / s)", xlabel="u = (x − t) / s")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    path = OUT / "wavkan.png"
    fig.savefig(path)
    plt.close(fig)
    return path


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for name in FAMILIES:
        print(plot_family(name))
    print(plot_wavelets())


if __name__ == "__main__":
    main()
