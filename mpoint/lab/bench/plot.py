"""joins/s against the group count (optional: needs matplotlib)."""
from __future__ import annotations

from typing import Any, Dict

from .common import JOIN_ROWS


def plot(results: Dict[str, Any], path: str) -> None:
    """joins/s against the group count, log-x, a subplot per family."""
    import importlib
    matplotlib: Any = importlib.import_module("matplotlib")   # optional: mpoint[plot]
    matplotlib.use("Agg")
    plt: Any = importlib.import_module("matplotlib.pyplot")
    fams = list(results["join"])
    fig, axes = plt.subplots(1, len(fams), figsize=(6.5 * len(fams), 4.8), squeeze=False)
    for ax, fam in zip(axes[0], fams):
        by_count = results["join"][fam]
        for name, _ in JOIN_ROWS:
            pts = [(int(c), t[name]["joins_per_s"]) for c, t in by_count.items()
                   if "joins_per_s" in t[name]]
            if pts:
                xs, ys = zip(*pts)
                ax.plot(xs, ys, marker="o", label=name,
                        linestyle="--" if name.startswith("C,") else "-")
        ax.set_xscale("log")
        ax.set_yscale("log")              # C one socket and IPv6 span two decades
        ax.set_title(f"{fam}: joins per second")
        ax.set_xlabel("groups")
        ax.set_ylabel("joins/s")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
