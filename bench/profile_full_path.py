"""Where a relay worker's CPU goes with delivery on, under load: py-spy on a real `relay serve`.

    pip install py-spy   # into the relay's virtualenv; not a dependency of the relay
    python bench/profile_full_path.py [--seconds 20] [--connections 16] [--top 40]

Starts the relay (its defaults) and the light Trackdrive stand-in (bench/standin.js, answering at
once), loads it with wrk (bench/lead.lua), samples every relay process with py-spy during the
load (only threads holding the GIL: where the Python CPU goes), and prints the share of samples
in which each function is on the stack ("inclusive") and at its top ("self").
The raw folded stacks go to --out for a flame graph.
"""
from __future__ import annotations

import argparse
import collections
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from peers import install_node_red, start_relay, start_standin

from harness import VENV_BIN, run_wrk


def py_spy() -> str:
    found = shutil.which("py-spy") or str(VENV_BIN / "py-spy")
    if not Path(found).exists():
        sys.exit("py-spy is needed: .venv/bin/pip install py-spy")
    return found


def summarise(folded: Path, top: int) -> str:
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    total = 0
    for line in folded.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        count = int(count_text)
        frames = [frame.split(" (")[0] + " " + frame.split(" (")[1].split(":")[0].rsplit("/", 1)[-1]
                  if " (" in frame else frame for frame in stack.split(";")]
        total += count
        for frame in set(frames):
            inclusive[frame] += count
        own[frames[-1]] += count
    rows = ["| function (file) | inclusive % | self % |", "|---|---:|---:|"]
    for frame, count in inclusive.most_common(top):
        rows.append(f"| `{frame}` | {100 * count / total:.1f} | {100 * own[frame] / total:.1f} |")
    rows.append(f"\n{total} samples; top self:")
    rows += [f"- `{frame}`: {100 * count / total:.1f}%" for frame, count in own.most_common(15)]
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--out", type=Path, default=Path("var/profile-full-path.folded"))
    args = parser.parse_args()
    install_node_red()  # the stand-in runs on the same Node
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        standin, standin_url = start_standin(Path(tmp))
        relay = start_relay(Path(tmp), standin_url)
        try:
            run_wrk(relay.url, seconds=3, connections=args.connections)  # warm-up
            master = relay.process.popen.pid  # type: ignore[union-attr]
            sampler = subprocess.Popen([py_spy(), "record", "--pid", str(master), "--subprocesses",
                                        "--duration", str(args.seconds - 2), "--rate", "200",
                                        "--gil", "--format", "raw", "--output", str(args.out), "--nonblocking"],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            load = threading.Thread(target=run_wrk, args=(relay.url,),
                                    kwargs={"seconds": args.seconds, "connections": args.connections})
            load.start()
            sampler.wait()
            load.join()
        finally:
            relay.process.stop()
            standin.stop()
    print(summarise(args.out, args.top))


if __name__ == "__main__":
    main()
