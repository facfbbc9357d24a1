"""Files the package ships beside the code, the same as in the repository (symlinks there):
the default config with its notice texts (``callconsent.yaml``: records nothing until a route is
enabled) and the dialplan hook (``dialplan/callconsent.conf``). The Debian package installs them
under /etc/callconsent and /usr/share/callconsent; a pip install finds them here."""

from __future__ import annotations

from importlib import resources
from importlib.abc import Traversable
from typing import Final

DEFAULT_CONFIG: Final = "callconsent.yaml"
DIALPLAN_HOOK: Final = "dialplan/callconsent.conf"


def shipped(name: str) -> Traversable:
    """One shipped file, e.g. ``shipped(DEFAULT_CONFIG).read_text()``."""
    return resources.files(__name__).joinpath(name)
