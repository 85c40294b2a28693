"""Run ``dentrix-zoho rollback`` in its own process and SIGKILL it mid-way (test helper, not a test).

    python rollback_crash_runner.py CONFIG_JSON

CONFIG_JSON holds ``args`` (the command's arguments) and ``kill_after_deletes``: the process dies
right after Zoho answered that many batch deletes, before the ledger could record them (the worst
moment). Zoho and ledger settings come from the environment, as for the real command.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path
from typing import Any


def main(config_path: str) -> int:
    from dentrix_zoho.rollback import adapter
    from dentrix_zoho.rollback.cli import rollback

    cfg: dict[str, Any] = json.loads(Path(config_path).read_text(encoding="utf-8"))
    kill_after = int(cfg["kill_after_deletes"])
    original = adapter.ZohoRollbackWriter.delete
    calls = {"n": 0}

    def delete_then_die(self: Any, module: str, ids: Any) -> Any:
        outcomes = original(self, module, ids)
        calls["n"] += 1
        if calls["n"] >= kill_after:
            os.kill(os.getpid(), signal.SIGKILL)
        return outcomes

    adapter.ZohoRollbackWriter.delete = delete_then_die  # type: ignore[method-assign]
    rollback.main(args=list(cfg["args"]), prog_name="dentrix-zoho rollback", standalone_mode=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
