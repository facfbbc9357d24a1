"""The recording lifecycle: index, retention purge, legal hold, subject access, erasure,
withdrawal, Art 30.

===============  =========================================================================
module           job
===============  =========================================================================
``index``        SQLite index of sidecars and ledger entries (rebuildable, incremental)
``query``        lookups on the index: subjects, holds, expiry, ledger positions
``purge``        delete recordings past ``delete_after``, skipping legal holds (R25, R26)
``anonymise``    consent evidence past retention + claims period (R21)
``hold``         legal hold set / release / list (R26)
``export``       subject access archive with cover sheet, export id (R27, R37)
``identify``     map a file back to its recording and export (R37)
``erase``        erasure per subject or per call, holds honoured (R29)
``withdraw``     withdrawal of consent after the call: consent purposes only (R17, R18)
``ropa``         the Art 30 record of processing with statistics (R31)
``audit``        the append-only operator audit log (R35)
``verify``       hash chain, sha256 of every recording, evidence on disk
``reconcile``    repair what a crash left
``live_stop``    stop a recording Asterisk is still making (withdraw during a call)
===============  =========================================================================

The sidecars and the ledger stay the source of truth; every job re-reads a sidecar before it
changes anything and writes a ledger entry for every destructive step. The ``callconsent``
subcommands for all of the above are in :mod:`callconsent.cli.lifecycle`.

The face: :class:`Context` (what every job works with) and :class:`Outcome` (one recording's fate
in purge or erase); everything else from the job modules by name.
"""

from callconsent.lifecycle._context import Context
from callconsent.lifecycle._delete import Outcome

__all__ = ["Context", "Outcome"]
