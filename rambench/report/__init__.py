"""Tables, figures, comparisons and the HTML report of a stored study.

The names the command line offers come from here, so a new view or figure is one entry."""

from rambench.metrics.specs import SPECS
from rambench.results import DEFAULT_AGAINST  # noqa: F401 - the command line's default

# table views (`rambench.report.views.build_table`) and their formats
VIEWS = ("main", "corruption", "severity", "missing", "conditions", "leaderboard",
         "calibration", "redundancy")
FORMATS = ("md", "latex", "csv", "html", "json")
# --metric name -> leaderboard column: every summary metric of `rambench.metrics.specs`
LEADERBOARD_METRICS = {key: spec.label for key, spec in SPECS.items()}
# figure kinds (`rambench.report.figures.make_figures`)
FIGURE_KINDS = ("severity", "av", "heatmap", "missing", "families", "calibration",
                "redundancy")
