"""The one place figures take their look from: palette, markers, sizes, fonts.

Sized for a two-column paper printed at 100 %: 3.3 in for one column, 7 in for the full
width, 7-pt text. Colours are the Okabe-Ito palette (safe for colour-blind readers); raml
always gets vermillion and a star, every other method a colour and marker fixed by its
place among the sorted method names, so a method looks the same in every figure.
"""

from __future__ import annotations

from collections.abc import Iterable

SINGLE_COLUMN = 3.3  # inches
DOUBLE_COLUMN = 7.0
DPI = 300  # PNG resolution

FEATURED = "raml"
FEATURED_STYLE = {"color": "#D55E00", "marker": "*", "linewidth": 1.4, "markersize": 4.5,
                  "zorder": 3}
OKABE_ITO = {  # name -> hex; vermillion is kept for raml
    "blue": "#0072B2", "orange": "#E69F00", "bluish green": "#009E73",
    "reddish purple": "#CC79A7", "sky blue": "#56B4E9", "black": "#000000",
    "yellow": "#F0E442", "vermillion": "#D55E00",
}
# orange is left out: beside raml's vermillion it reads as the same colour
CYCLE = [OKABE_ITO[c] for c in ("blue", "bluish green", "reddish purple", "sky blue", "black",
                                "yellow")]
MARKERS = ["o", "s", "^", "v", "D", "P", "X", "h", "<", ">"]
MODALITY_COLOURS = {"image": OKABE_ITO["blue"], "audio": OKABE_ITO["orange"]}  # by kind
HEATMAP_CMAP = "magma_r"  # perceptually uniform, readable in grey and by colour-blind readers

RC = {
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans", "Arial", "Helvetica"],
    "font.size": 7,
    "axes.titlesize": 7,
    "axes.labelsize": 7,
    "xtick.labelsize": 6,
    "ytick.labelsize": 6,
    "legend.fontsize": 6.5,
    "legend.frameon": False,
    "axes.linewidth": 0.6,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.linewidth": 0.4,
    "grid.alpha": 0.35,
    "xtick.major.width": 0.6,
    "ytick.major.width": 0.6,
    "xtick.major.size": 2.5,
    "ytick.major.size": 2.5,
    "lines.linewidth": 1.0,
    "lines.markersize": 3,
    "errorbar.capsize": 1.5,
    "pdf.fonttype": 42,  # TrueType in PDFs: editable text, accepted by publishers
    "ps.fonttype": 42,
    "savefig.bbox": "tight",
    "savefig.pad_inches": 0.02,
}


LINESTYLES = ["-", "--", ":", "-."]


def method_styles(methods: Iterable[str]) -> dict[str, dict]:
    """Colour, marker, line style and width for each method (raml fixed; the others by their
    place among the sorted names). Up to 30 methods get distinct (colour, marker) pairs;
    the line style changes with every round of the six colours. Figures pass all of a
    study's methods, so a method looks the same in each."""
    methods = set(methods)
    styles = {}
    others = sorted(m for m in methods if m != FEATURED)
    for i, method in enumerate(others):
        styles[method] = {"color": CYCLE[i % len(CYCLE)], "marker": MARKERS[i % len(MARKERS)],
                          "linestyle": LINESTYLES[(i // len(CYCLE)) % len(LINESTYLES)],
                          "linewidth": 1.0, "markersize": 3, "zorder": 2}
    if FEATURED in methods:
        styles[FEATURED] = dict(FEATURED_STYLE)
    return styles
