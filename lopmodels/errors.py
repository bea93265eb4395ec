"""The failures a user can fix, one class each, torch-free: `lop` prints one line and exits 2.

Every one is a `LopError`, whose message names the problem and the fix. The classes tell them apart for the
code that handles one kind (a retry of an unreachable cluster is not a fix of a bad config), and so an
`except ConfigError` no longer catches an unreachable storage or a locked sweep.
"""


class LopError(Exception):
    """A failure the user can fix: one line that names it and the fix (exit 2)."""


class ConfigError(LopError, ValueError):
    """A bad value in a config, a sweep definition or on the command line."""


class ClusterUnreachable(LopError):
    """No Ray cluster answers at the address given, or it refuses this driver."""


class StorageUnreachable(LopError):
    """The sweep storage cannot be reached or written, from this machine or from a node of the cluster."""


class SweepLocked(LopError):
    """Another driver is running this sweep folder."""


class NoResults(LopError):
    """A folder or file holds no sweep, or no finished epoch or task yet."""


class DataUnavailable(LopError):
    """No source of a dataset worked; the message lists each source tried and how to provide the data."""
