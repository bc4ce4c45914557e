"""A client no one here wrote: the TypeScript SDK's, with a request timeout shorter than the
answer, follows an agent-mode ask past its ``--detach-after`` to the whole answer.

The call returns at the detach with the text so far and a job; ``check_lingma_job``
follows the job, each call within the client's timeout (one past it fails the script with
the SDK's own timeout error). The simulator answers in four and a half seconds, over
twice the client's timeout. Skipped, saying why, where Node, npm or the SDK cannot be had
(``ts_sdk.py``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from servers import open_log, read_log
from ts_sdk import SCRIPTS, node_with_sdk

pytestmark = pytest.mark.timeout(120)

# The answer: 36 deltas 0.125 s apart, then its tool call and the note on it.
DELTAS, DELTA_DELAY_S = 36, 0.125
CLIENT_TIMEOUT_S = 2.0
DETACH_AFTER_S = 0.5
CHECK_WAIT_S = 0.5


def test_a_typescript_client_with_a_short_timeout_follows_a_job_to_the_whole_answer(
    tmp_path: Path,
) -> None:
    node, folder = node_with_sdk()
    assert DELTAS * DELTA_DELAY_S > 2 * CLIENT_TIMEOUT_S, "the answer outlasts one call"
    workspace = tmp_path / "project"
    workspace.mkdir()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("LINGMA_")},
        "MCP_SDK_DIR": str(folder),
        "PYTHON": sys.executable,
        "WORK_DIR": str(tmp_path / "work"),
        "WORKSPACE": str(workspace),
        "DETACH_AFTER": str(DETACH_AFTER_S),
        "CLIENT_TIMEOUT_MS": str(int(CLIENT_TIMEOUT_S * 1000)),
        "CHECK_WAIT_S": str(CHECK_WAIT_S),
        "LINGMA_SIM_DELTAS": str(DELTAS),
        "LINGMA_SIM_DELTA_DELAY": str(DELTA_DELAY_S),
        "LINGMA_SIM_LOG": str(tmp_path / "sim.jsonl"),
    }
    with open_log(tmp_path) as errlog:
        try:
            done = subprocess.run(
                [node, str(SCRIPTS / "background_job.mjs")],
                stdout=subprocess.PIPE,
                stderr=errlog,
                text=True,
                env=env,
                timeout=100,
                check=False,
            )
        except subprocess.TimeoutExpired:
            pytest.fail(f"the TypeScript client did not finish: {read_log(tmp_path)[-2000:]}")
    assert done.returncode == 0, f"node failed:\n{done.stdout}\n{read_log(tmp_path)[-3000:]}"
    report = json.loads(done.stdout.strip().splitlines()[-1])

    assert {"ask_lingma", "check_lingma_job", "cancel_lingma_job"} <= set(report["tools"])
    started = report["started"]
    assert started["status"] == "running" and started["job_id"]
    assert started["answer"], "the call that detached brought the text so far"
    states = report["states"]
    assert states[-1] == "done" and report["error"] is None
    assert states.count("running") >= 2, "the job was followed over several checks"
    result = report["result"]
    assert result["mode"] == "agent" and result["finish_reason"] == "success"
    assert result["tool_events"], "an agent answer with its tool call"
    assert report["followed"] == result["answer"] == report["content"]
    assert "a long agent task" in result["answer"]
