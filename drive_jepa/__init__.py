"""drive-jepa core: version, the `drive-jepa` CLI, typed config plumbing and the frames/geometry module.

This is the shared foundation every other package may import. It imports none of `agent`, `training`,
`bench2drive` or `carla_tools` at module level; the CLI reaches them lazily, one subcommand at a time.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("drive-jepa")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
