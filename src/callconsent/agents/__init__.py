"""Agents' standing consent (R15): ``rules`` (pure: what the agent's decision means for a
recording), ``evidence`` (the sidecar and ledger shapes of that decision), ``registry`` (the
timestamped registry, mirrored to AstDB) and ``bridge`` (the AMI adapter at the agent's bridge).
"""
