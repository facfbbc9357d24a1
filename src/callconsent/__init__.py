"""callconsent: lawful call recording for Asterisk (notice, consent, MixMonitor, evidence)."""

__version__ = "0.1.0"
