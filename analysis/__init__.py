"""From Tune experiments to tidy DataFrames, metrics, figures, tables and reports."""
from sweeps.results import load_results

__all__ = ["load_results"]
