"""Run plugin commands in this process through ``skel.run`` (no executable, no daemon).

Started by the fuzz tests inside a throwaway host namespace (never in pytest's own
process: plugins enter namespaces and change links). One request per line on stdin,
``{"ptype", "env", "stdin" (base64)}``; one answer per line on the original stdout,
``{"rc", "stdout", "stderr"}`` (base64) or ``{"raised": traceback}`` when ``skel.run``
raised, which it must never do. Anything a plugin or its child processes print goes to
stderr, so it cannot corrupt the answers.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import os
import sys
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


def main() -> None:
    answers = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # stray prints (ours or a child's) go to stderr, never into the answers
    from netplugins.cni.skel import log_level, run
    from netplugins.registry import load_funcs

    logbuf = io.StringIO()
    handler = logging.StreamHandler(logbuf)
    handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    for line in sys.stdin:
        req = json.loads(line)
        logbuf.seek(0)
        logbuf.truncate()
        try:
            level, _ = log_level(req["env"].get("NETCTL_LOG_LEVEL"))
            root.setLevel(level)
            out = run(load_funcs(req["ptype"]), req["env"], base64.b64decode(req["stdin"]))
            err = logbuf.getvalue().encode(errors="replace") + out.stderr
            answer = {"rc": out.exit_code, "stdout": base64.b64encode(out.stdout).decode(),
                      "stderr": base64.b64encode(err).decode()}
        except BaseException:  # noqa: BLE001 - reported to the test, which fails
            answer = {"raised": traceback.format_exc()}
        answers.write(json.dumps(answer) + "\n")
        answers.flush()


if __name__ == "__main__":
    main()
