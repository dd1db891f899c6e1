"""Did the fast generator move the physics? The validation table and overlay figure of docs/data.md.

    python -m benchmarks.bench_generate compare --save compare.npz     # kept events of both paths
    python -m benchmarks.validate_generate compare.npz [--figure docs/figures/fast_vs_old.png]

For each QCD slice and for all slices together (physical weights: the weighted mixture is the physical
background whatever each path's statistics), the weighted distributions of HT, Njet, Nb, MJ, leading-jet pT
and each image channel's pixel sum of the fast and the old path are compared with a weighted two-sample
Kolmogorov-Smirnov test (data.validation); each slice's selected cross section is compared with its
statistical error. Prints markdown tables; the figure overlays the all-slice distributions.
"""
from __future__ import annotations

import argparse
from collections import defaultdict

import numpy as np

from benchmarks import run_main
from data import validation
from data.files import InputError, check_input_file, check_output_file, replaced

LABELS = {"ht": "HT [GeV]", "njet": "Njet", "nb": "Nb", "mj": "MJ [GeV]", "lead_jet_pt": "leading-jet pT [GeV]",
          "hcal_sum": "HCAL pixel sum [GeV]", "ecal_sum": "ECAL pixel sum [GeV]",
          "track_sum": "track pixel sum [GeV]"}


def load(path: str) -> dict:
    """{slice: {path: {quantity: array}}} from a ``bench_generate compare --save`` file."""
    out: dict = defaultdict(dict)
    with np.load(path) as z:
        for key in z.files:
            name, p, q = key.split("/")
            out[name].setdefault(p, {})[q] = z[key]
    return dict(out)


def combined(data: dict, path: str) -> dict:
    """Every slice's kept events of one path, with their physical weights."""
    keys = ("weight",) + validation.VARIABLES
    return {k: np.concatenate([data[s][path][k] for s in data]) for k in keys}


def tables(data: dict) -> tuple[list[dict], list[dict]]:
    """(cross-section rows per slice, KS rows per slice and variable, 'all' for the combination)."""
    xs, ks = [], []
    for s, d in data.items():
        o, f = d["old"], d["fast"]
        diff = float(f["sel_xsec_pb"] - o["sel_xsec_pb"])
        err = float(np.hypot(f["sel_xsec_err_pb"], o["sel_xsec_err_pb"]))
        xs.append({"slice": s, "old_pb": float(o["sel_xsec_pb"]), "old_err": float(o["sel_xsec_err_pb"]),
                   "fast_pb": float(f["sel_xsec_pb"]), "fast_err": float(f["sel_xsec_err_pb"]),
                   "pull": diff / err if err > 0 else float("nan"), "old_kept": int(o["kept"]),
                   "fast_kept": int(f["kept"]), "fast_ess": validation.kish_ess(f["weight"])})
    groups = [(s, data[s]["old"], data[s]["fast"]) for s in data] + \
        [("all", combined(data, "old"), combined(data, "fast"))]
    for s, o, f in groups:
        if len(o["weight"]) < 5 or len(f["weight"]) < 5:
            continue
        for row in validation.compare(o, f):
            ks.append({"slice": s, "n_old": len(o["weight"]), "ess_fast": validation.kish_ess(f["weight"]), **row})
    return xs, ks


def markdown(xs: list[dict], ks: list[dict]) -> str:
    lines = ["| slice | old: selected xsec [pb] (kept) | fast: selected xsec [pb] (kept, ESS) | pull |",
             "|---|---|---|---|"]
    for r in xs:
        lines.append(f"| {r['slice']} | {r['old_pb']:.3f} +- {r['old_err']:.3f} ({r['old_kept']}) | "
                     f"{r['fast_pb']:.3f} +- {r['fast_err']:.3f} ({r['fast_kept']}, {r['fast_ess']:.0f}) | "
                     f"{r['pull']:+.2f} |")
    lines += ["", "| slice | variable | old mean | fast mean | KS D | p-value |", "|---|---|---|---|---|---|"]
    for r in ks:
        lines.append(f"| {r['slice']} | {r['variable']} | {r['mean_a']:.4g} +- {r['err_a']:.2g} | "
                     f"{r['mean_b']:.4g} +- {r['err_b']:.2g} | {r['ks_d']:.3f} | {r['p']:.3f} |")
    return "\n".join(lines)


def figure(data: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    o, f = combined(data, "old"), combined(data, "fast")
    fig, axes = plt.subplots(2, 4, figsize=(16, 7))
    for ax, v in zip(axes.ravel(), validation.VARIABLES):
        lowest = np.inf
        lo, hi = np.percentile(np.concatenate([o[v], f[v]]), [0.5, 99.5])
        if v in ("njet", "nb"):
            bins = np.arange(np.floor(lo) - 0.5, np.ceil(hi) + 1.5)
        else:
            bins = np.linspace(lo, hi, 21)
        for d, name, style in ((o, "old path", "o"), (f, "fast path", "s")):
            h, _ = np.histogram(d[v], bins, weights=d["weight"])
            e = np.sqrt(np.histogram(d[v], bins, weights=d["weight"] ** 2)[0])
            norm = d["weight"].sum() * np.diff(bins)
            ax.errorbar(0.5 * (bins[1:] + bins[:-1]), h / norm, yerr=e / norm, fmt=style, ms=3, label=name,
                        capsize=0)
            if (h > 0).any():
                lowest = min(lowest, (h[h > 0] / norm[h > 0]).min())
        ax.set_xlabel(LABELS[v])
        ax.set_yscale("log")
        if np.isfinite(lowest):
            ax.set_ylim(bottom=lowest / 5)  # an error bar as large as its point would reach zero
    axes[0, 0].legend()
    fig.suptitle("QCD background after the baseline, all slices, physical weights: fast against old path")
    fig.tight_layout()
    with replaced(path) as tmp:
        fig.savefig(tmp, dpi=90)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("npz", help="file written by `python -m benchmarks.bench_generate compare --save`")
    p.add_argument("--figure", help="PNG for the overlay of the all-slice distributions")
    a = p.parse_args(argv)
    check_input_file(a.npz, "npz")
    if a.figure:
        check_output_file(a.figure, "--figure")
    try:
        data = load(a.npz)
    except (OSError, ValueError) as exc:  # not an npz of bench_generate compare
        raise InputError(f"{a.npz}: not a file of `bench_generate compare --save` ({exc})") from None
    xs, ks = tables(data)
    print(markdown(xs, ks))
    if a.figure:
        figure(data, a.figure)
        print(f"\nfigure: {a.figure}")


if __name__ == "__main__":
    run_main(main)
