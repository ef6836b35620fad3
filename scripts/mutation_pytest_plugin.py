"""pytest plugin loaded only by scripts/mutation (through mutmut): keeps mutmut's runs to the chosen
test files, and lets tests that start the product in a subprocess pass mutmut's stats pass."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

# Set by scripts/mutation: the test files (relative to the project root) the mutants face.
TEST_FILES_ENV = "SIGNALDESK_MUTATION_TEST_FILES"
_STATS_PASS = "stats"
_real_popen_init: Any = subprocess.Popen.__init__


def pytest_ignore_collect(collection_path: Path, config: Any) -> bool | None:
    chosen = os.environ.get(TEST_FILES_ENV)
    if not chosen or not collection_path.name.startswith("test_"):
        return None
    relative = collection_path.relative_to(config.rootpath).as_posix()
    return True if relative not in chosen.split() else None


def _popen_init(self: subprocess.Popen[Any], *args: Any, env: Any = None, **kwargs: Any) -> None:
    # In the stats pass (the map of which test calls which function) mutmut sets
    # MUTANT_UNDER_TEST=stats; a child inheriting it looks for mutmut's config in its own working
    # folder, finds none and fails. A child's calls cannot enter the map anyway, so there it runs
    # the original code. While a mutant is tested the child inherits the mutant and runs it.
    if os.environ.get("MUTANT_UNDER_TEST") == _STATS_PASS:
        env = dict(os.environ if env is None else env)
        env.pop("MUTANT_UNDER_TEST", None)
    _real_popen_init(self, *args, env=env, **kwargs)


subprocess.Popen.__init__ = _popen_init  # type: ignore[method-assign]
