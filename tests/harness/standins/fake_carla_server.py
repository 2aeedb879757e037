"""Stand-in for `CarlaUE4.sh` in the harness tests (no CARLA needed).

Takes the same flags (`-RenderOffScreen -nosound -carla-rpc-port=P -carla-streaming-port=S
-graphicsadapter=G`),
holds the RPC and streaming ports, and answers the real CARLA client's `version` call on the RPC port with the
msgpack-RPC reply rpclib expects (result = CARLA's Response variant `[[1, "0.9.15"]]`); every other call gets
an
error reply. It also starts a child process, so tests can check that stopping the server ends its whole
process group.

Behaviour per start comes from the JSON list in $FAKE_SERVER_PLAN (start k uses entry k, the last entry
repeats;
default "ok"); each start appends a line `<k> <pid> <child pid> <rpc port>` to $FAKE_SERVER_STATE/starts.txt:
  "ok"            serve until terminated
  "segfault"      die with SIGSEGV at once
  "exit1"         exit with status 1 at once
  "mute"          hold the ports but never answer (a hung server)
  "die_after:X"   serve X seconds, then die with SIGSEGV
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import msgpack


def _flag(name: str, default: str = "") -> str:
    for arg in sys.argv[1:]:
        if arg.startswith(f"-{name}="):
            return arg.split("=", 1)[1]
    return default


def _listen(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("", port))
    sock.listen(16)
    return sock


def _serve_rpc(conn: socket.socket, answer: bool) -> None:
    unpacker = msgpack.Unpacker(raw=False)
    with conn:
        while True:
            try:
                data = conn.recv(65536)
            except OSError:
                return
            if not data:
                return
            if not answer:
                continue
            unpacker.feed(data)
            for msg in unpacker:
                _, msgid, method, _params = msg
                if method == "version":
                    reply = [1, msgid, None, [[1, "0.9.15"]]]
                else:
                    reply = [1, msgid, f"stand-in server has no method {method}", None]
                conn.sendall(msgpack.packb(reply))


def _accept_loop(sock: socket.socket, answer: bool) -> None:
    while True:
        conn, _ = sock.accept()
        threading.Thread(target=_serve_rpc, args=(conn, answer), daemon=True).start()


def main() -> None:
    assert "-RenderOffScreen" in sys.argv and "-nosound" in sys.argv, sys.argv
    rpc = int(_flag("carla-rpc-port", "2000"))
    streaming = int(_flag("carla-streaming-port", str(rpc + 1)))
    state = os.environ.get("FAKE_SERVER_STATE", "")
    plan = json.loads(Path(os.environ["FAKE_SERVER_PLAN"]).read_text()) if os.environ.get("FAKE_SERVER_PLAN") else []
    k = 0
    if state:
        path = os.path.join(state, "starts.txt")
        k = len(Path(path).read_text().splitlines()) if os.path.exists(path) else 0
    mode = plan[min(k, len(plan) - 1)] if plan else "ok"
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3600)"])
    if state:
        with open(os.path.join(state, "starts.txt"), "a") as f:
            f.write(f"{k} {os.getpid()} {child.pid} {rpc} {mode}\n")
    print(
        f"fake CARLA start {k}: mode={mode} rpc={rpc} streaming={streaming} gpu={_flag('graphicsadapter')}",
        flush=True,
    )
    if mode == "segfault":
        os.kill(os.getpid(), signal.SIGSEGV)
    if mode == "exit1":
        sys.exit(1)
    rpc_sock, stream_sock = _listen(rpc), _listen(streaming)
    threading.Thread(target=_accept_loop, args=(rpc_sock, mode != "mute"), daemon=True).start()
    if mode.startswith("die_after:"):
        time.sleep(float(mode.split(":", 1)[1]))
        os.kill(os.getpid(), signal.SIGSEGV)
    while True:
        time.sleep(3600)
    del stream_sock


if __name__ == "__main__":
    main()
