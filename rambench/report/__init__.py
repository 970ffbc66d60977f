"""Tables, figures, comparisons and the HTML report of a stored study.

The names the command line offers come from here, so a new view or figure is one entry."""

# table views (`rambench.report.tables.build_table`) and their formats
VIEWS = ("main", "corruption", "severity", "missing", "conditions", "leaderboard",
         "calibration", "redundancy")
FORMATS = ("md", "latex", "csv", "html", "json")
# --metric name -> leaderboard column
LEADERBOARD_METRICS = {
    "clean": "clean", "mpc": "mPC", "rpc": "rPC", "mce": "mCE", "rmce": "rel. mCE",
    "auc": "severity AUC", "missing": "missing", "missing_auc": "missing AUC",
    "er": "eff. robustness", "av": "AV events", "mixed": "mixed",
}
# figure kinds (`rambench.report.figures.make_figures`)
FIGURE_KINDS = ("severity", "heatmap", "missing", "families", "calibration", "redundancy")
# the method every other is compared with when none is given (and the study has it)
DEFAULT_AGAINST = "raml"
