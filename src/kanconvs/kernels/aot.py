"""Compile every Triton kernel of kanconvs for a GPU architecture, ahead of time, on any machine (no GPU needed).

The interpreter tests check what the kernels compute; this checks that Triton's compiler accepts them (types,
constexpr branches, device-function arguments) down to a cubin, for each family and each variant of the launch.

    python -m kanconvs.kernels.aot --arch 90      # sm_90: H100 / H200; --quick: one variant per family

Exits 1 and names the kernel if any fails. Needs Triton with its bundled ``ptxas``; ``TRITON_INTERPRET`` must be
unset (interpreted kernels cannot be compiled).
"""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Iterator, Sequence
from typing import Any

from ..bases import create_basis
from ..bases.wavelet import TRITON_WAVELETS
from . import triton_features as tf
from . import triton_wavelet_conv as tw
from .triton_lang import HAS_TRITON, triton

_LOGGER = logging.getLogger("kanconvs.kernels.aot")  # also when run as __main__

__all__ = ["compile_all", "main"]

#: Basis configurations whose kernels are compiled (every family with Triton functions, and their flags).
BASES: tuple[tuple[str, dict[str, Any]], ...] = (
    ("legendre", {}),
    ("chebyshev", {}),
    ("hermite", {}),
    ("jacobi", {"alpha": 0.5, "beta": 1.5}),
    ("gram", {}),
    ("bernstein", {"degree": 5}),
    ("rbf", {}),
    ("relu", {"channels": 4}),
    ("bspline", {}),
    ("bspline", {"spline_order": 0}),
)
#: (squash, base, x dtype, feature dtype) variants of the fused basis pass.
VARIANTS = (
    (1, 2, "fp32", "bf16"),
    (0, 3, "fp32", "fp32"),
    (2, 1, "bf16", "bf16"),
    (1, 0, "fp16", "fp16"),
)


def _constexprs(signature: dict[str, str], values: dict[str, Any]) -> dict[str, Any]:
    signature.update(dict.fromkeys(values, "constexpr"))
    return values


def _feature_jobs(quick: bool) -> Iterator[tuple[str, Any, dict[str, str], dict[str, Any]]]:
    for name, kwargs in BASES:
        basis = create_basis(name, **kwargs)
        orders = {basis.fused_scalars()[3]} | ({0, 1, 2, 3} if name == "gram" and not quick else set())
        for order in sorted(orders):
            for squash, base, x, out in VARIANTS[:1] if quick else VARIANTS:
                tag = f"{name}{kwargs or ''} order={order} squash={squash} base={base} x={x} features={out}"
                k = basis.num_functions
                common = {"s0": "fp32", "s1": "fp32", "s2": "fp32", "S": "i32", "C": "i32", "PC": "i32", "F": "i32"}
                fwd = {"xb_ptr": f"*{x}", "x_ptr": f"*{x}", "out_ptr": f"*{out}", "p_ptr": "*fp32", "q_ptr": "*fp32"}
                fwd.update(common)
                values = {"BASIS": basis.triton_forward, "K": k, "ORDER": order, "SQUASH": squash, "BASE": base}
                yield (
                    f"features forward {tag}",
                    tf._features_fwd_kernel,
                    fwd,
                    _constexprs(fwd, {**values, "BLOCK": 256}),
                )
                bwd = {"xb_ptr": f"*{x}", "x_ptr": f"*{x}", "g_ptr": f"*{out}", "dxb_ptr": f"*{x}", "dx_ptr": f"*{x}"}
                bwd.update({"p_ptr": "*fp32", "q_ptr": "*fp32", "pg_ptr": "*fp32", **common, "NBLK": "i32", "P": "i32"})
                values = {**values, "BASIS": basis.triton_backward, "SAME_INPUT": base != 1, "BLOCK": 256}
                yield f"features backward {tag}", tf._features_bwd_kernel, bwd, _constexprs(bwd, values)


def _wavelet_jobs(quick: bool) -> Iterator[tuple[str, Any, dict[str, str], dict[str, Any]]]:
    sizes = ["C_IN", "C_OUT", "c_in", "c_out", "D", "H", "W", "DO", "HO", "WO"]
    sizes += ["sd", "sh", "sw", "pd", "ph", "pw", "dd", "dh", "dw"]
    for wavelet, fn in TRITON_WAVELETS.items():
        for kernel in ((1, 3, 3),) if quick else ((1, 1, 3), (1, 3, 3), (3, 3, 3)):
            for x in ("bf16",) if quick else ("fp32", "bf16"):
                tag = f"{wavelet} kernel={kernel} x={x}"
                values = {"WAVELET": fn, "KD": kernel[0], "KH": kernel[1], "KW": kernel[2]}
                values.update({"BLOCK_O": tw._BLOCK_O, "BLOCK_P": tw._BLOCK_P})
                fwd = {"x_ptr": f"*{x}", "s_ptr": "*fp32", "t_ptr": "*fp32", "w_ptr": "*fp32", "win_ptr": "*fp32"}
                fwd.update({"z_ptr": f"*{x}", **dict.fromkeys(sizes, "i32")})
                yield f"wavkan forward {tag}", tw._wavkan_fwd_kernel, fwd, _constexprs(fwd, dict(values))
                bwd = {"x_ptr": f"*{x}", "s_ptr": "*fp32", "t_ptr": "*fp32", "w_ptr": "*fp32", "win_ptr": "*fp32"}
                bwd.update({"gz_ptr": f"*{x}", "dx_ptr": "*fp32", "ds_ptr": "*fp32", "dt_ptr": "*fp32"})
                bwd.update({"dw_ptr": "*fp32", **dict.fromkeys(sizes, "i32")})
                yield f"wavkan backward {tag}", tw._wavkan_bwd_kernel, bwd, _constexprs(bwd, dict(values))


def compile_all(arch: int = 90, warp_size: int = 32, quick: bool = False) -> list[tuple[str, str | None]]:
    """``(kernel, error or None)`` for every kernel variant (``quick``: one per family), as ``sm_<arch>`` cubins."""
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    target = GPUTarget("cuda", arch, warp_size)
    results: list[tuple[str, str | None]] = []
    for tag, kernel, signature, constexprs in [*_feature_jobs(quick), *_wavelet_jobs(quick)]:
        try:
            compiled = triton.compile(ASTSource(kernel, signature, constexprs), target=target)
            results.append((tag, None if "cubin" in compiled.asm else "no cubin produced"))
        except Exception as err:
            results.append((tag, f"{type(err).__name__}: {str(err).strip()[:2000]}"))
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kanconvs.kernels.aot", description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", type=int, default=90, help="CUDA compute capability ×10 (default 90: H100/H200)")
    parser.add_argument("--quick", action="store_true", help="one launch variant per family instead of all")
    args = parser.parse_args(argv)
    if not HAS_TRITON:
        _LOGGER.error("Triton is not installed")
        return 2
    if not hasattr(tf._features_fwd_kernel, "cache_key"):  # an InterpretedFunction
        _LOGGER.error("TRITON_INTERPRET is set: interpreted kernels cannot be compiled; unset it")
        return 2
    start = time.perf_counter()
    results = compile_all(args.arch, quick=args.quick)
    failed = [(tag, err) for tag, err in results if err is not None]
    for tag, err in failed:
        _LOGGER.error(f"FAILED {tag}\n{err}\n")
    _LOGGER.info(
        f"{len(results) - len(failed)} of {len(results)} kernels compiled for sm_{args.arch} "
        f"in {time.perf_counter() - start:.0f} s"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    from kanconvs.cli import configure_logging

    configure_logging()
    raise SystemExit(main())
