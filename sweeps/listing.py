"""`lop sweep list`: each sweep's title, arms, and per scale its trials, replicates and rough CPU cost.

One list of plain values for both the text and `--json` (keys in docs/analysis.md), so a script reads what a user
sees.
"""
from __future__ import annotations

from typing import Any

from sweeps.base import SCALES, estimated_cpu_seconds, replicate_counts, unmeasured_models
from sweeps.registry import SWEEPS


def sweep_entries(names: list[str]) -> list[dict[str, Any]]:
    """The registered sweeps among `names`, in the registry's order, as JSON-ready objects."""
    entries = []
    for name, entry in SWEEPS.items():
        if name not in names:
            continue
        scales = {}
        for scale in SCALES:
            trials = entry.trials(scale)
            scales[scale] = {"trials": len(trials),
                             "replicates": sorted(set(replicate_counts(trials).values())),
                             "cpu_hours": sum(estimated_cpu_seconds(t.config) for t in trials) / 3600,
                             "guessed_models": unmeasured_models(trials)}
        entries.append({"name": name, "title": entry.title, "arms": list(entry.arms), "scales": scales})
    return entries


def listing_text(entries: list[dict[str, Any]]) -> str:
    """The text `lop sweep list` prints: two lines per sweep, one per scale."""
    lines = []
    for entry in entries:
        arms = entry["arms"]
        shown = ", ".join(arms) if len(arms) <= 16 else ", ".join(arms[:8]) + f", ... ({len(arms)} arms)"
        lines += [f"{entry['name']:<11} {entry['title']}", f"            arms: {shown}"]
        for scale, cost in entry["scales"].items():
            replicates = "/".join(str(c) for c in cost["replicates"])
            guessed = cost["guessed_models"]
            lines.append(f"            {scale:<6} {cost['trials']:>4} trials ({replicates} replicates per arm), "
                         f"~{cost['cpu_hours']:,.1f} CPU-hours" + (f" (a guess for {', '.join(guessed)}: not measured)"
                                                                   if guessed else ""))
    return "\n".join(lines)
