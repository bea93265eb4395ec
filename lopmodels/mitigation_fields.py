"""The built-in mitigations' fields and their types: the `mitigation.<field>` columns of every record.

Torch-free, so the results schema (`trainables/schema.py`) types these columns without importing the mitigations;
`tests/test_schema.py` checks it against the dataclass fields of every mitigation in `MITIGATIONS`.
"""
from __future__ import annotations

# mitigation -> field -> its type's name (as `Mitigation` annotates it: float, int, bool or str)
MITIGATION_FIELDS: dict[str, dict[str, str]] = {
    "none": {},
    "l2": {"weight_decay": "float", "decoupled": "bool"},
    "shrink-perturb": {"shrink": "float", "sigma": "float", "every": "str"},
    "noise": {"sigma": "float", "weight_decay": "float"},
    "cbp": {"replacement_rate": "float", "decay_rate": "float", "maturity_threshold": "int"},
    "redo": {"tau": "float", "every_steps": "int", "at_task_end": "bool"},
    "l2-init": {"strength": "float"},
    "reset": {},
}


def field_types() -> dict[str, str]:
    """Every field of any built-in mitigation, sorted, with its type; a field two mitigations share has one type."""
    types: dict[str, str] = {}
    for name, fields in MITIGATION_FIELDS.items():
        for field, kind in fields.items():
            if types.setdefault(field, kind) != kind:
                raise TypeError(f"mitigation field {field!r} is a {types[field]} in one mitigation and a {kind} in "
                                f"{name!r}: one column cannot hold both")
    return dict(sorted(types.items()))
