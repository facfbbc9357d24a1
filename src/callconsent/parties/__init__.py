"""Who takes part in a recorded call (R1, straffeloven § 263): ``tracker`` (pure: who is bridged
with each recorded caller), ``stops`` (pure: which recordings must stop, and the evidence of it)
and ``adapter`` (AMI bridge, dial and hangup events in, stops out).
"""
