"""Triton's compiler accepts every kernel, down to an sm_90 cubin, on this CPU-only machine (no GPU needed).

The interpreter tests (test_kernels.py) check what the kernels compute; the interpreter is lenient about what the
compiler rejects (types, constexpr branches, device functions passed as arguments). A fresh Triton cache makes the
compiler really run.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


def run_aot(tmp_path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["TRITON_CACHE_DIR"] = str(tmp_path / "triton-cache")
    return subprocess.run(
        [sys.executable, "-m", "kanconvs.kernels.aot", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
        check=False,
    )


def test_every_family_kernel_compiles_for_sm90(tmp_path) -> None:
    result = run_aot(tmp_path, "--quick")
    assert result.returncode == 0, result.stderr[-4000:]
    assert "26 of 26 kernels compiled for sm_90" in result.stderr  # logged


@pytest.mark.slow
def test_every_kernel_variant_compiles_for_sm90(tmp_path) -> None:
    result = run_aot(tmp_path)
    assert result.returncode == 0, result.stderr[-4000:]
    assert "140 of 140 kernels compiled for sm_90" in result.stderr  # logged


def test_interpreted_kernels_are_refused(tmp_path) -> None:
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "kanconvs.kernels.aot", "--quick"], capture_output=True, text=True, env=env, check=False
    )
    assert result.returncode == 2
    assert "TRITON_INTERPRET is set" in result.stderr
