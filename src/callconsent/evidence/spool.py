"""The private spool (``storage.spool_dir``): where MixMonitor writes the clear WAV while an
encrypted recording is made (R32, R33). The app encrypts it into the recordings tree when the
recording ends and deletes it; ``reconcile`` finishes what a crash left.

The folder belongs to the Asterisk user, mode ``0700`` (or ``2770`` with the group Asterisk
shares with the app, when the app does not run as the Asterisk user): never anything for
others, never served (no HTTP static folder, not below the recordings tree, the notice archive
or the ledger's folder: the config checks that). It must exist before a call records:
MixMonitor would create a missing folder with Asterisk's umask, readable by everyone.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from callconsent.evidence.fsio import folder_exposure


def spool_problem(spool_dir: Path) -> str | None:
    """Why ``serve`` will not spool recordings in ``spool_dir``, or None."""
    try:
        st = os.lstat(spool_dir)
    except FileNotFoundError:
        return (
            f"storage.spool_dir {spool_dir} does not exist: create it before calls record "
            f"(install -d -o asterisk -g asterisk -m 0700 {spool_dir}); MixMonitor would make "
            "it readable by everyone"
        )
    except OSError as exc:
        return f"cannot read storage.spool_dir {spool_dir}: {exc.strerror}"
    if stat.S_ISLNK(st.st_mode):
        return f"storage.spool_dir {spool_dir} is a symlink: name the folder itself"
    if not stat.S_ISDIR(st.st_mode):
        return f"storage.spool_dir {spool_dir} is not a folder"
    exposure = folder_exposure(st.st_mode)
    if exposure is None and st.st_mode & 0o001:
        exposure = f"open to every user on the machine (mode {stat.S_IMODE(st.st_mode):04o})"
    if exposure is None:
        return None
    return (
        f"storage.spool_dir {spool_dir} is {exposure}: it holds the clear audio of calls being "
        f"recorded, others may have no access. Fix it with: chmod o-rwx {spool_dir}"
    )
