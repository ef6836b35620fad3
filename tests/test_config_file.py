"""config.yaml documents every key the bot reads, and validates as shipped."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from bot.config import BotConfig
from intel.config import load_config

CONFIG_FILE = Path(__file__).resolve().parent.parent / "config.yaml"


def _model_keys(model: type[BaseModel], prefix: str = "") -> set[str]:
    keys: set[str] = set()
    for name, field in model.model_fields.items():
        if field.exclude:  # not configuration: `secrets`, read from the environment
            continue
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            keys |= _model_keys(annotation, f"{prefix}{name}.")
        else:
            keys.add(f"{prefix}{name}")
    return keys


def _file_keys(tree: dict[str, Any], leaves: set[str], prefix: str = "") -> set[str]:
    """The file's keys; a mapping is a section unless the model reads it as one value."""
    keys: set[str] = set()
    for name, value in tree.items():
        key = f"{prefix}{name}"
        if isinstance(value, dict) and key not in leaves:
            keys |= _file_keys(value, leaves, f"{key}.")
        else:
            keys.add(key)
    return keys


def test_config_yaml_documents_every_key() -> None:
    model_keys = _model_keys(BotConfig)
    in_file = _file_keys(yaml.safe_load(CONFIG_FILE.read_text(encoding="utf-8")), model_keys)
    assert in_file == model_keys


def test_config_yaml_values_are_the_built_in_defaults() -> None:
    shipped = load_config(CONFIG_FILE, env={}, model=BotConfig)
    assert shipped == BotConfig()
