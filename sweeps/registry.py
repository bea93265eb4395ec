"""Every built-in sweep: one import line each (no directory auto-import)."""
from sweeps.base import SWEEPS
from sweeps import fig1, fig2, fig3, fig4, fig5, fig6, table1  # noqa: F401  (registers the paper's sweeps)
from sweeps import mitigations, artefacts  # noqa: F401  (registers the sweeps beyond the paper)

__all__ = ["SWEEPS"]
