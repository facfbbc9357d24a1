"""Withdrawal of consent (R16, R17): ``in_call`` (pure rules for ``*9``/``*8`` during the call) with
``in_call_adapter`` (AMI), ``route`` (pure rules of the after-call withdrawal route on the phone)
with ``route_adapter`` (AMI), and ``features_check`` (features.conf bindings versus the config).
"""
