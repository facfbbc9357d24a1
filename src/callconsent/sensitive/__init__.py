"""The agent's sensitive-data flag: ``rules`` (pure sidecar and ledger changes) and ``adapter``
(the AMI UserEvent the agent's feature code raises).
"""
