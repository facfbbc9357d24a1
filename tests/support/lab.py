"""The lab's configuration (config/demo.yaml with the lab's ARI password), shared by the unit
tests that check shipped files against it and by the end-to-end tests that run it."""

from __future__ import annotations

import os
from pathlib import Path

from callconsent.config import Config, load_config

REPO = Path(__file__).resolve().parents[2]
DEMO_CONFIG = REPO / "config" / "demo.yaml"
LAB_ENV = {"CALLCONSENT_ARI_PASSWORD": "callconsent-lab"}


def lab_config() -> Config:
    return load_config(DEMO_CONFIG, env={**os.environ, **LAB_ENV})
