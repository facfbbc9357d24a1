"""The caller's objection to a documentation recording during the call (Art 21, R30):
``rules`` (pure: what an objection does to the sidecar, and its ledger entry) and ``adapter``
(the agent's ``*6``, the caller's ``*3`` while bridged and the objection digit after the notice
until the bridge in; AMI ``StopMixMonitor`` and the evidence out).
"""
