"""The FastAGI hook: the same consent flow as the Stasis app, for dialplans that call
``Gosub(callconsent-agi,s,1(<route>))`` (``dialplan/callconsent.conf``).

- :mod:`~callconsent.agi.wire`: the wire format (header, replies, commands), pure;
- :mod:`~callconsent.agi.rules`: which command carries out a machine action and which events a
  reply means, and the request's checks, pure;
- :mod:`~callconsent.agi.server`: the hardened asyncio FastAGI server;
- :mod:`~callconsent.agi.adapter`: drives :mod:`callconsent.consent` and the evidence store.
"""
