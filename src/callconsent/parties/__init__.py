"""Who takes part in a recorded call (R1, R2, straffeloven § 263): ``tracker`` (pure: who is
bridged with each recorded caller), ``stops`` (pure: which recordings must stop, and the evidence
of it), ``hold`` (pure: when the recording is muted: hold, parking, a caller alone), ``adapter``
(AMI bridge, dial, hold and hangup events in, stops and mutes out) and ``recover`` (the recorded
calls in progress found again after a restart).
"""
