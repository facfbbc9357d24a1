"""The evidence on disk: ``documents`` (sidecar documents of a call), ``sidecar`` (read, validate,
write), ``ledger`` (the append-only hash-chained ledger), ``paths`` (where a recording lives, from
Asterisk's uniqueid only), ``callref`` (call references read to callers), ``wav`` (audio checks),
``purposes`` (which purposes stand without consent), ``entries`` (every ledger entry shape but
the call entry) and ``fsio`` (atomic writes, stamps, hashes).
"""
