#!/usr/bin/env python3
"""A pausable TCP proxy on loopback, for cutting one node off its database
(bench/catch_up.sh). Listens on 127.0.0.1:PORT (0: a free one, printed
first as "port N") and forwards each connection to UPSTREAM_PORT on
127.0.0.1. Signals, each answered with a line on stdout once done (with the
Unix time, for the caller's clock):
  SIGUSR1  cut: reset every proxied connection and stop listening (new
           connections are refused) -> "cut T"
  SIGUSR2  open: listen again on the same port -> "open T"
Ends at SIGTERM.

Usage: pg_proxy.py PORT UPSTREAM_PORT
"""

import asyncio
import socket
import signal
import sys
import time

PORT, UPSTREAM = int(sys.argv[1]), int(sys.argv[2])
open_pairs = set()


async def pipe(r, w):
    try:
        while data := await r.read(65536):
            w.write(data)
            await w.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        w.close()


async def handle(cr, cw):
    try:
        ur, uw = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", UPSTREAM), 5)
    except (OSError, asyncio.TimeoutError):
        cw.close()
        return
    pair = (cw, uw)
    open_pairs.add(pair)
    try:
        await asyncio.gather(pipe(cr, uw), pipe(ur, cw))
    finally:
        open_pairs.discard(pair)


def listening_socket(port):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port))
    return s


async def main():
    sock = listening_socket(PORT)
    port = sock.getsockname()[1]
    state = {"server": await asyncio.start_server(handle, sock=sock)}
    print(f"port {port}", flush=True)
    loop = asyncio.get_running_loop()
    todo = asyncio.Queue()
    loop.add_signal_handler(signal.SIGUSR1, todo.put_nowait, "cut")
    loop.add_signal_handler(signal.SIGUSR2, todo.put_nowait, "open")
    loop.add_signal_handler(signal.SIGTERM, todo.put_nowait, "end")
    while (cmd := await todo.get()) != "end":
        if cmd == "cut" and state["server"] is not None:
            state["server"].close()  # stops listening; wait_closed would wait for the connections
            state["server"] = None
            for pair in list(open_pairs):
                for w in pair:
                    # RST, not FIN: both ends see a dead link at once.
                    s = w.get_extra_info("socket")
                    if s is not None:
                        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                    w.transport.abort()
            open_pairs.clear()
        elif cmd == "open" and state["server"] is None:
            state["server"] = await asyncio.start_server(handle, sock=listening_socket(port))
        print(f"{cmd} {time.time():.6f}", flush=True)


asyncio.run(main())
