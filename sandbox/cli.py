"""``python -m sandbox``: run a command against a sandbox, or keep one up in the background.

  run   --scenario FILE [--state DIR] -- COMMAND...   start, run COMMAND, stop; the audit JSON is the
                                                      last stdout line; exit status is COMMAND's
  up    --scenario FILE --state DIR                   start in the background; returns once the cluster formed
  audit --state DIR                                   print the audit JSON of a background sandbox
  env   --state DIR                                   print `export ...` lines pointing at it
  down  --state DIR                                   stop it (prints the final audit)
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, Dict, List, Optional

from .scenario import ScenarioError, load

if TYPE_CHECKING:  # pragma: no cover
    from .runtime import Sandbox

INFO = "sandbox.json"
UP_TIMEOUT = 60.0


def _fail(message: str, code: int = 2) -> int:
    print(f"sandbox: {message}", file=sys.stderr)
    return code


def _start(scenario_path: str, state_dir: str) -> "Sandbox":
    from .runtime import create  # moto is imported only by the commands that start one

    scenario = load(scenario_path)
    os.makedirs(state_dir, exist_ok=True)
    return create(scenario, state_dir=state_dir).start()


def _info(sb: "Sandbox", pid: int, control: Optional[str]) -> Dict[str, Any]:
    return {"pid": pid, "scenario": sb.scenario.path, "es_url": sb.es_url, "aws_endpoint": sb.world.endpoint,
            "control_url": control, "env": sb.env(), "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def _write_json(path: str, data: Any) -> None:
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=1)
    os.chmod(tmp, 0o600)  # it can hold generated ES credentials
    os.replace(tmp, path)


# ------------------------------------------------------------------- run
def cmd_run(args: argparse.Namespace) -> int:
    command: List[str] = args.command
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        return _fail("run needs a command after --, e.g. run --scenario s.yml -- ansible-playbook ...")
    state_dir = args.state or tempfile.mkdtemp(prefix="sandbox-")
    from .runtime import SandboxError

    try:
        sb = _start(args.scenario, state_dir)
    except (ScenarioError, SandboxError) as exc:
        return _fail(str(exc))
    try:
        _write_json(os.path.join(state_dir, INFO), _info(sb, os.getpid(), None))
        env = dict(os.environ)
        env.update(sb.env())
        sys.stdout.flush()
        try:
            rc = subprocess.call(command, env=env)
        except FileNotFoundError:
            print(f"sandbox: command not found: {command[0]}", file=sys.stderr)
            rc = 127
        except KeyboardInterrupt:
            rc = 130
    finally:
        report = sb.audit()
        sb.write_audit(report)  # the same figures as printed (wall_seconds moves on)
        sb.stop()
    print(json.dumps(report, sort_keys=True), flush=True)
    return rc


# ------------------------------------------------------------- up / serve
class _Control(BaseHTTPRequestHandler):
    sandbox: Any  # runtime.Sandbox

    def log_message(self, fmt: str, *args: Any) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        if self.path == "/audit":
            body = json.dumps(self.sandbox.audit()).encode()
        elif self.path == "/events":
            with self.sandbox.state.lock:
                body = json.dumps(self.sandbox.cluster.events).encode()
        else:
            self.send_response(404)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def cmd_serve(args: argparse.Namespace) -> int:
    """The background process behind `up` (not for direct use)."""
    from .runtime import SandboxError

    try:
        sb = _start(args.scenario, args.state)
    except (ScenarioError, SandboxError) as exc:
        _write_json(os.path.join(args.state, "error.json"), {"error": str(exc)})
        return _fail(str(exc))
    handler = type("Control", (_Control,), {"sandbox": sb})
    control = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=control.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    _write_json(os.path.join(args.state, INFO), _info(sb, os.getpid(), f"http://127.0.0.1:{control.server_address[1]}"))
    while not stop.wait(0.5):
        sb.write_audit()
    sb.write_audit()
    control.shutdown()
    sb.stop()
    try:
        os.remove(os.path.join(args.state, INFO))
    except OSError:
        pass
    return 0


def _read_info(state_dir: str) -> Optional[Dict[str, Any]]:
    try:
        with open(os.path.join(state_dir, INFO), encoding="utf-8") as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    try:  # a zombie child (we spawned it in this process) is not alive
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done == 0
    except ChildProcessError:
        return True


def cmd_up(args: argparse.Namespace) -> int:
    try:
        scenario = load(args.scenario)  # fail here, with the reason, rather than in the background
    except ScenarioError as exc:
        return _fail(str(exc))
    # real nodes: Maven resolution (first time), JVM starts and loading the seed data take minutes
    up_timeout = UP_TIMEOUT if scenario.engine == "sim" else UP_TIMEOUT + (scenario.real.form_timeout * 2)
    state_dir = os.path.abspath(args.state)
    os.makedirs(state_dir, exist_ok=True)
    info = _read_info(state_dir)
    if info and _alive(info["pid"]):
        return _fail(f"a sandbox is already running for {state_dir} (pid {info['pid']}); run `down` first")
    for stale in (INFO, "error.json"):
        try:
            os.remove(os.path.join(state_dir, stale))
        except OSError:
            pass
    log = open(os.path.join(state_dir, "sandbox.log"), "ab")
    pkg_parent = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ)
    env["PYTHONPATH"] = pkg_parent + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    proc = subprocess.Popen([sys.executable, "-m", "sandbox", "serve", "--scenario", os.path.abspath(args.scenario),
                             "--state", state_dir], stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                            start_new_session=True, env=env, cwd=state_dir)
    log.close()
    deadline = time.monotonic() + up_timeout
    while time.monotonic() < deadline:
        info = _read_info(state_dir)
        if info and info.get("pid") == proc.pid:
            print(json.dumps({k: info[k] for k in ("pid", "es_url", "aws_endpoint")}))
            return 0
        if proc.poll() is not None:
            try:
                with open(os.path.join(state_dir, "error.json"), encoding="utf-8") as fh:
                    reason = json.load(fh)["error"]
            except (OSError, ValueError, KeyError):
                reason = f"it exited with status {proc.returncode}; see {state_dir}/sandbox.log"
            return _fail(f"the sandbox did not start: {reason}")
        time.sleep(0.1)
    proc.terminate()
    return _fail(f"the sandbox did not come up within {up_timeout:.0f}s; see {state_dir}/sandbox.log")


def cmd_audit(args: argparse.Namespace) -> int:
    info = _read_info(args.state)
    if info and info.get("control_url") and _alive(info["pid"]):
        with urllib.request.urlopen(info["control_url"] + "/audit", timeout=10) as resp:
            print(resp.read().decode())
        return 0
    try:
        with open(os.path.join(args.state, "audit.json"), encoding="utf-8") as fh:
            print(json.dumps(json.load(fh)))
        return 0
    except (OSError, ValueError):
        return _fail(f"no sandbox running and no audit found in {args.state}")


def cmd_env(args: argparse.Namespace) -> int:
    info = _read_info(args.state)
    if not info:
        return _fail(f"no sandbox running for {args.state}")
    for k, v in sorted(info["env"].items()):
        print(f"export {k}={shlex.quote(v)}")
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    info = _read_info(args.state)
    if not info or not _alive(info["pid"]):
        return _fail(f"no sandbox running for {args.state}")
    os.kill(info["pid"], signal.SIGTERM)
    deadline = time.monotonic() + 20
    while _alive(info["pid"]) and time.monotonic() < deadline:
        time.sleep(0.1)
    if _alive(info["pid"]):
        return _fail(f"the sandbox (pid {info['pid']}) did not stop within 20s")
    return cmd_audit(args)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True, metavar="{run,up,audit,env,down}")
    scenario_help = "scenario file, e.g. sandbox/scenarios/demo.yml (format: sandbox/README.md)"
    state_help = "state directory: sandbox.json, audit.json, events.jsonl, sandbox.log"
    p = sub.add_parser("run", help="start a sandbox, run COMMAND against it, stop, print the audit JSON last",
                       description="Start a sandbox, run COMMAND with its environment (ES_URL, AWS_ENDPOINT_URL, "
                                   "...), stop it, print the audit JSON as the last stdout line; the exit status "
                                   "is COMMAND's.")
    p.add_argument("--scenario", required=True, help=scenario_help)
    p.add_argument("--state", help=state_help + " (default: a new temporary directory)")
    p.add_argument("command", nargs=argparse.REMAINDER, help="the command, after --")
    p.set_defaults(fn=cmd_run)
    helps = {"up": "start a sandbox in the background; returns once the cluster has formed and is green",
             "audit": "print the live audit JSON of a background sandbox",
             "env": "print `export ...` lines pointing a shell at a background sandbox",
             "down": "stop a background sandbox and print its final audit"}
    for name, fn, needs_scenario in (("up", cmd_up, True), ("serve", cmd_serve, True), ("audit", cmd_audit, False),
                                     ("env", cmd_env, False), ("down", cmd_down, False)):
        # serve is up's background process, not a command for people: no help, not listed
        p = sub.add_parser(name, help=helps[name], description=helps[name]) if name in helps else sub.add_parser(name)
        if needs_scenario:
            p.add_argument("--scenario", required=True, help=scenario_help)
        p.add_argument("--state", required=True, help=state_help)
        p.set_defaults(fn=fn)
    args = parser.parse_args(argv)
    return args.fn(args)
