"""The projection figure: epoch time, speedup and efficiency against nodes, one line per profile and image
size; dashed: fp16 gradients; dotted: the compact model at the same size (when calibrated)."""
from __future__ import annotations


from data.files import make_parent, replaced
from bench.projection.model import project_curve, speedup_efficiency, with_compression


def plot_curves(curves, path: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(16, 5))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (profile, case, steps, compact) in enumerate(curves):
        colour = colours[i % len(colours)]
        nodes = [s.nodes for s in steps]
        variants = [("", steps, "-")]
        variants.append((", fp16 grads", project_curve(profile, with_compression(case), nodes), "--"))
        if compact is not None:
            variants.append((" -> compact", project_curve(profile, compact, nodes), ":"))
        for extra, pts, style in variants:
            label = f"{profile.name}, {case.model} {case.image_size}px{extra}"
            se = speedup_efficiency(pts)
            kw = dict(color=colour, linestyle=style, marker="o" if style == "-" else None, markersize=4,
                      label=label if len(pts) > 1 or style == "-" else None)
            axes[0].plot(nodes, [s.epoch_s for s in pts], **kw)
            if len(pts) > 1:
                axes[1].plot(nodes, [x[0] for x in se], **kw)
                axes[2].plot(nodes, [100 * x[1] for x in se], **kw)
    top = max((s.nodes for _, _, st, _ in curves for s in st), default=1)
    axes[1].plot([1, top], [1, top], color="grey", linewidth=1, label="ideal")
    for ax, title in zip(axes, ("epoch time [s] (projected)", "speedup (projected)", "efficiency % (projected)")):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("nodes")
        ax.set_title(title)
        ax.grid(alpha=0.3)
    axes[0].set_yscale("log")
    axes[1].set_yscale("log", base=2)
    axes[2].set_ylim(0, 105)
    axes[0].legend(fontsize="x-small")
    fig.suptitle("Performance-model projection (bench.projection); KNL figures are estimates", fontsize="medium")
    fig.tight_layout()
    try:
        make_parent(path)
        with replaced(path) as tmp:
            fig.savefig(tmp, dpi=110)
    finally:
        plt.close(fig)

