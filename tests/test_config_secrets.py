"""Credentials are read from the environment once, with the configuration, and never from or into
config.yaml."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import BotConfig
from intel.config import Config, load_config
from intel.errors import ConfigError

ENV = {
    "REDDIT_CLIENT_ID": "id-from-env",
    "REDDIT_CLIENT_SECRET": "secret-from-env",
    "REDDIT_USER_AGENT": "agent-from-env",
}


@pytest.mark.parametrize("model", [Config, BotConfig])
def test_the_loaded_configuration_carries_the_environments_credentials(model: type[Config]) -> None:
    config = load_config(path=None, env=ENV, model=model)
    assert config.secrets.reddit_client_id == "id-from-env"
    assert config.secrets.reddit_client_secret == "secret-from-env"
    assert config.secrets.reddit_user_agent == "agent-from-env"
    assert "secret-from-env" not in repr(config)
    assert "secrets" not in config.model_dump()  # never written out with the configuration


def test_without_them_there_are_none() -> None:
    assert load_config(path=None, env={}).secrets.reddit_client_id is None
    assert Config().secrets.reddit_client_id is None


def test_secrets_in_the_file_or_the_config_variables_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("secrets:\n  reddit_client_secret: typed-in\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"secrets: .*belong in the environment"):
        load_config(path=path, env={})
    with pytest.raises(ConfigError, match=r"secrets: .*belong in the environment"):
        load_config(path=None, env={"BOT__SECRETS__REDDIT_CLIENT_SECRET": "typed-in"})
