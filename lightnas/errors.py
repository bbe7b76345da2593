"""LightNAS's own errors: bad input that the command line reports as one line with exit code 2.

Anything else that escapes a command is a bug and keeps its traceback.
"""

from __future__ import annotations


class LightNASError(Exception):
    """Base of every error caused by the user's input (config, files, data, checkpoints)."""


class ConfigError(LightNASError, ValueError):
    """A bad config value or option; the message is one line naming the key and the valid values."""


class DataError(LightNASError):
    """A dataset that is missing or malformed; the message names the expected layout and path."""


class CheckpointError(LightNASError):
    """A checkpoint or training folder that cannot be used (missing, corrupt or incompatible)."""


class ArchitectureError(LightNASError, ValueError):
    """An architecture (JSON) that does not fit its search space."""


class ReportedError(LightNASError):
    """Bad input that rank 0 of a distributed run reports: the other ranks exit with code 2
    without a message (lightnas.runtime.distributed)."""


class DeployError(LightNASError):
    """A child that cannot be deployed as asked (a layer with no Larq Compute Engine mapping,
    k-bit layers without `--fallback float`) or a deployment extra that is not installed."""
