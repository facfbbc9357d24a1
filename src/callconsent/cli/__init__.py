"""The ``callconsent`` command: ``main`` (argument parsing, dispatch), ``agent`` (agent consent
commands), ``lifecycle`` (retention, hold, access, erasure, withdrawal, verify) and ``_common``
(config loading, exit codes, output, progress and time bounds shared by every subcommand).
"""
