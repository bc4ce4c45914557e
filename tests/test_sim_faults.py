"""The simulator's start-up, shutdown, scripted behaviour and faults, one switch at a time.

What the process shows (``.info``, flags, signals, exit codes) runs ``lingma-sim start``;
what it says on the wire, the simulator serving in this event loop.
"""

from __future__ import annotations

import json
import re
import signal
import socket
import stat
import time
from pathlib import Path

import pytest
from procs import wait_until
from simclient import SimClient, deltas_text, running_sim, serving_sim, sim_command

SMALL = {"LINGMA_SIM_ANSWER_SIZE": "80", "LINGMA_SIM_CHUNK": "8"}


# -- commands and the info file -------------------------------------------------------------


def test_version_and_status_commands() -> None:
    assert sim_command("version").stdout.strip() == "2.5.17-sim"
    status = json.loads(sim_command("status", "-o", "json", "--workDir", ".").stdout)
    assert status["logged_in"] is True and status["username"] and status["user_type"]
    assert status["version"] == "2.5.17-sim"


async def test_two_line_info_names_port_and_pid(tmp_path: Path) -> None:
    async with running_sim(tmp_path) as sim:
        port = await sim.wait_port()
        assert (sim.work_dir / ".info").read_text() == f"{port}\n{sim.pid}\n"


async def test_three_line_info_adds_an_ipc_path(tmp_path: Path) -> None:
    async with running_sim(tmp_path, env={"LINGMA_SIM_INFO_FORMAT": "three"}) as sim:
        port = await sim.wait_port()
        lines = (sim.work_dir / ".info").read_text().splitlines()
        assert lines[:2] == [str(port), str(sim.pid)] and lines[2].endswith(".sock")


async def test_json_info_goes_to_info_json(tmp_path: Path) -> None:
    async with running_sim(tmp_path, args=["--info-format", "json"]) as sim:
        port = await sim.wait_port()
        info = json.loads((sim.work_dir / ".info.json").read_text())
        assert info == {
            "websocketPort": port,
            "pid": sim.pid,
            "ipcServerPath": info["ipcServerPath"],
            "isDev": False,
        }
        assert not (sim.work_dir / ".info").exists()


async def test_a_torn_info_write_is_visible_half_done(tmp_path: Path) -> None:
    async with running_sim(tmp_path, env={"LINGMA_SIM_INFO_TORN": "1"}) as sim:
        path = sim.work_dir / ".info"
        half = await wait_until(lambda: path.exists() and path.read_text(), what=".info")
        assert half.count("\n") == 1 and half.strip().isdigit()
        port = await sim.wait_port()
        assert path.read_text() == f"{port}\n{sim.pid}\n"


async def test_socket_port_flag_is_honoured_and_other_binary_flags_ignored(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free = probe.getsockname()[1]
    args = ["--socketPort", str(free), "--httpPort", "1", "--transportType", "websocket"]
    async with running_sim(tmp_path, args=[*args, "--endpoint", "x", "--copyDataDir", "y"]) as sim:
        assert await sim.wait_port() == free


async def test_no_info_is_written_while_the_start_is_delayed(tmp_path: Path) -> None:
    async with running_sim(tmp_path, env={"LINGMA_SIM_START_DELAY": "30"}) as sim:
        await wait_until(lambda: "delaying start-up" in sim.stderr(), what="the delay's log line")
        assert not (sim.work_dir / ".info").exists()
        sim.signal(signal.SIGTERM)  # a stop during the delay: out at once, nothing written
        assert await sim.wait_exit() == 0
        assert not (sim.work_dir / ".info").exists()


async def test_no_info_keeps_running_without_the_file(tmp_path: Path) -> None:
    async with running_sim(tmp_path, env={"LINGMA_SIM_NO_INFO": "1"}) as sim:
        await wait_until(lambda: "not writing .info" in sim.stderr(), what="the no-info log line")
        assert not (sim.work_dir / ".info").exists()
        assert sim.proc is not None and sim.proc.poll() is None


async def test_exit_at_start_fails_before_info_with_a_message(tmp_path: Path) -> None:
    async with running_sim(tmp_path, env={"LINGMA_SIM_EXIT_AT_START": "7"}) as sim:
        assert await sim.wait_exit() == 7
        assert "fatal" in sim.stderr() and not (sim.work_dir / ".info").exists()


async def test_sigterm_exits_cleanly_and_leaves_info(tmp_path: Path) -> None:
    async with running_sim(tmp_path) as sim:
        await sim.wait_port()
        sim.signal(signal.SIGTERM)
        assert await sim.wait_exit() == 0
        assert (sim.work_dir / ".info").exists()


async def test_ignore_sigterm_needs_sigkill(tmp_path: Path) -> None:
    async with running_sim(tmp_path, env={"LINGMA_SIM_IGNORE_SIGTERM": "1"}) as sim:
        await sim.wait_port()
        sim.signal(signal.SIGTERM)
        await wait_until(lambda: "ignoring SIGTERM" in sim.stderr(), what="the ignore log line")
        assert sim.proc is not None and sim.proc.poll() is None
        sim.signal(signal.SIGKILL)
        assert await sim.wait_exit() == -signal.SIGKILL


async def test_a_bad_switch_value_exits_2_naming_it(tmp_path: Path) -> None:
    async with running_sim(tmp_path, env={"LINGMA_SIM_CHUNK": "many"}) as sim:
        assert await sim.wait_exit() == 2
        assert "LINGMA_SIM_CHUNK" in sim.stderr()


# -- login states ---------------------------------------------------------------------------


@pytest.mark.parametrize(("auth", "code"), [("logged_out", 1), ("expired", 3)])
async def test_not_logged_in_states(tmp_path: Path, auth: str, code: int) -> None:
    async with serving_sim(tmp_path, env={"LINGMA_SIM_AUTH": auth}) as sim:
        async with SimClient.connect(sim.port) as client:
            assert (await client.result("auth/status"))["status"] == code
            assert await client.result("config/queryModels") == {}
            refused = await client.ask("hello", "req-1")
            assert refused["success"] is False and "not logged in" in refused["errorMessage"]


# -- answer shape ---------------------------------------------------------------------------


async def test_answer_size_chunk_and_exact_delta_count(tmp_path: Path) -> None:
    async with serving_sim(
        tmp_path, env={"LINGMA_SIM_ANSWER_SIZE": "300", "LINGMA_SIM_CHUNK": "13"}
    ) as sim:
        async with SimClient.connect(sim.port) as client:
            finish = await client.chat("size", "req-1")
            assert len(finish["fullAnswer"]) == 300
            assert max(len(e["text"]) for e in client.events("req-1", "chat/answer")) == 13
    async with serving_sim(tmp_path, env={"LINGMA_SIM_DELTAS": "500"}, name="exact") as sim:
        async with SimClient.connect(sim.port) as client:
            await client.chat("count", "req-2")
            assert len(client.events("req-2", "chat/answer")) == 500


async def test_the_delta_delay_holds_the_next_delta_back_until_a_stop(tmp_path: Path) -> None:
    # Longer than the test: a second delta before the stop could only come early.
    env = {"LINGMA_SIM_DELTAS": "6", "LINGMA_SIM_DELTA_DELAY": "60"}
    async with serving_sim(tmp_path, env=env) as sim:
        async with SimClient.connect(sim.port) as client:
            await client.ask("slow", "req-1")
            await client.wait_until(lambda: client.events("req-1", "chat/answer"))
            await client.result("chat/stop", {"requestId": "req-1", "sessionId": ""})
            finish = await client.wait_until(lambda: client.finish("req-1"))
            assert finish["reason"] == "cancelled"
            assert len(client.events("req-1", "chat/answer")) == 1


async def test_stamped_deltas_carry_the_monotonic_send_time(tmp_path: Path) -> None:
    async with serving_sim(
        tmp_path, env={"LINGMA_SIM_STAMP": "1", "LINGMA_SIM_DELTAS": "20"}
    ) as sim:
        async with SimClient.connect(sim.port) as client:
            await client.chat("stamp", "req-1")
            received = time.monotonic_ns()
            stamps = [e["text"] for e in client.events("req-1", "chat/answer") if e["text"]]
            values = [int(re.fullmatch(r"⟨(\d+)⟩", s).group(1)) for s in stamps]  # type: ignore[union-attr]
            assert len(values) == 20 and values == sorted(values) and values[-1] <= received


async def test_think_switch_adds_thinking_for_any_model(tmp_path: Path) -> None:
    async with serving_sim(tmp_path, env={"LINGMA_SIM_THINK": "1"}) as sim:
        async with SimClient.connect(sim.port) as client:
            await client.chat("ponder", "req-1", model="auto")
            assert client.events("req-1", "chat/think")


# -- faults ---------------------------------------------------------------------------------


async def test_rate_limit_finishes_with_429(tmp_path: Path) -> None:
    async with serving_sim(tmp_path, env={"LINGMA_SIM_RATE_LIMIT": "1"}) as sim:
        async with SimClient.connect(sim.port) as client:
            finish = await client.chat("too many", "req-1")
            assert finish["statusCode"] == 429 and finish["reason"] == "error"
            assert "quota" in finish["errorMessage"]
            assert await client.result("chat/listAllSessions", {}) == []


async def test_crash_after_n_deltas_exits_3(tmp_path: Path) -> None:
    async with running_sim(tmp_path, env={**SMALL, "LINGMA_SIM_CRASH_AFTER": "3"}) as sim:
        async with SimClient.connect(await sim.wait_port()) as client:
            await client.ask("crash", "req-1")
            await client.wait_closed()
            assert len(client.events("req-1", "chat/answer")) == 3
            assert client.finish("req-1") is None
        assert await sim.wait_exit() == 3
        assert "simulated crash" in sim.stderr()


async def test_hang_accepts_then_sends_nothing_until_stopped(tmp_path: Path) -> None:
    async with serving_sim(tmp_path, env={"LINGMA_SIM_HANG": "1"}) as sim:
        async with SimClient.connect(sim.port) as client:
            assert (await client.ask("hang", "req-1"))["success"] is True
            await wait_until(lambda: "hanging" in sim.stderr(), what="the hang log line")
            assert (await client.result("auth/status"))["status"] == 2  # still answering
            assert client.events("req-1") == []
            await client.result("chat/stop", {"requestId": "req-1", "sessionId": ""})
            finish = await client.wait_until(lambda: client.finish("req-1"))
            assert finish["reason"] == "cancelled" and client.events("req-1", "chat/answer") == []


async def test_drop_after_closes_the_socket_once_and_keeps_serving(tmp_path: Path) -> None:
    async with serving_sim(tmp_path, env={**SMALL, "LINGMA_SIM_DROP_AFTER": "2"}) as sim:
        async with SimClient.connect(sim.port) as client:
            await client.ask("drop", "req-1")
            await client.wait_closed()
            assert len(client.events("req-1", "chat/answer")) == 2
        async with SimClient.connect(sim.port) as client:
            finish = await client.chat("again", "req-2")
            assert finish["reason"] == "success"


async def test_malformed_frames_are_injected_between_good_ones(tmp_path: Path) -> None:
    async with serving_sim(tmp_path, env={**SMALL, "LINGMA_SIM_MALFORMED": "1"}) as sim:
        async with SimClient.connect(sim.port) as client:
            finish = await client.chat("garbage around", "req-1")
            assert finish["fullAnswer"] == deltas_text(client, "req-1")
            reasons = " ".join(str(e) for e in client.frame_errors)
            for expected in ("before a frame header", "not a number", "not JSON", "UTF-8"):
                assert expected in reasons


async def test_the_message_log_is_off_unless_asked(tmp_path: Path) -> None:
    async with serving_sim(tmp_path, env={"LINGMA_SIM_LOG": ""}) as sim:
        async with SimClient.connect(sim.port) as client:
            await client.chat("quiet", "req-1")
    assert not sim.log_path.exists()


# -- the conversation store -------------------------------------------------------------


async def test_a_truncated_store_is_kept_aside_and_the_restart_says_so(tmp_path: Path) -> None:
    async with serving_sim(tmp_path, env=SMALL) as sim:
        async with SimClient.connect(sim.port) as client:
            for n in range(12):
                await client.chat(f"conversation {n}", f"req-{n}")
    store = tmp_path / "work" / "sessions.json"
    assert len(json.loads(store.read_text("utf-8"))["sessions"]) == 12
    whole = store.read_bytes()
    store.write_bytes(whole[: len(whole) * 2 // 3])
    async with serving_sim(tmp_path, env=SMALL) as sim:
        async with SimClient.connect(sim.port) as client:
            assert await client.result("chat/listAllSessions", {}) == []
            await client.chat("a fresh start", "req-new")
        (aside,) = (tmp_path / "work").glob("sessions.json.corrupt-*")
        assert aside.read_bytes() == whole[: len(whole) * 2 // 3]
        assert "damaged" in sim.stderr() and aside.name in sim.stderr()
    assert len(json.loads(store.read_text("utf-8"))["sessions"]) == 1


async def test_leftover_temporary_files_are_removed_at_start(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    (work / "sessions.json.999999998.tmp").write_text('{"sessions": [')
    async with serving_sim(tmp_path) as sim:
        assert not (work / "sessions.json.999999998.tmp").exists()
        assert "left by an interrupted write" in sim.stderr()


async def test_store_log_and_work_dir_are_private(tmp_path: Path) -> None:
    async with running_sim(tmp_path, env=SMALL) as sim:
        async with SimClient.connect(await sim.wait_port()) as client:
            await client.chat("a secret prompt", "req-1")
        sim.signal(signal.SIGTERM)  # the store is written at the latest on shutdown
        assert await sim.wait_exit() == 0
    work = tmp_path / "work"
    assert stat.S_IMODE(work.stat().st_mode) == 0o700
    assert stat.S_IMODE((work / "sessions.json").stat().st_mode) == 0o600
    assert stat.S_IMODE(sim.log_path.stat().st_mode) == 0o600
    assert not list(work.glob("*.tmp"))
