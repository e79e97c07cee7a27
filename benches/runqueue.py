#!/usr/bin/env python3
"""Run-queue delay of the gateway's proxy threads, from a scheduler trace.

How long each proxy-thread wake-up waited before the thread ran, and which
threads ran on its core meanwhile. A p99 measured from outside cannot tell
a slow proxy from a proxy kept off its core; this can.

Record while the load runs (root; both cores, because the waker of a proxy
thread is usually a client on another core):

    perf record -e sched:sched_waking,sched:sched_switch -a -o w.data -- sleep 5
    perf script -i w.data -F time,cpu,comm,tid,event,trace > w.txt
    benches/runqueue.py w.txt ["portcullis prox"]

The second argument is the thread-name prefix to follow (pingora's proxy
threads by default). Wake-ups of a thread that was already running are
not counted, nor waits whose end the trace lost.
"""
import re
import sys

LINE = re.compile(r"\[(\d+)\]\s+(\d+\.\d+):\s+sched:(sched_waking|sched_switch): (.*)")
WAKING = re.compile(r"comm=(.+?) pid=(\d+) prio=\d+ target_cpu=(\d+)")
SWITCH = re.compile(r"prev_comm=.+? prev_pid=(\d+) .*==> next_comm=(.+?) next_pid=(\d+)")


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    prefix = sys.argv[2] if len(sys.argv) > 2 else "portcullis prox"
    running = {}  # cpu -> pid on it
    waiting = {}  # pid -> (woken at, its cpu, names that ran there since)
    delays, culprits = [], {}
    with open(sys.argv[1], errors="replace") as trace:
        for line in trace:
            m = LINE.search(line)
            if not m:
                continue
            cpu, t, event, rest = int(m.group(1)), float(m.group(2)), m.group(3), m.group(4)
            if event == "sched_waking":
                w = WAKING.match(rest)
                if w and w.group(1).startswith(prefix):
                    pid, target = int(w.group(2)), int(w.group(3))
                    if pid not in waiting and running.get(target) != pid:
                        waiting[pid] = (t, target, [])
                continue
            s = SWITCH.search(rest)
            if not s:
                continue
            prev, nxt_name, nxt = int(s.group(1)), s.group(2), int(s.group(3))
            running[cpu] = nxt
            # A thread leaving a core it was never seen entering: an event
            # was lost, so its wait is unknown.
            if prev in waiting:
                del waiting[prev]
            if nxt in waiting and waiting[nxt][1] == cpu:
                woken, _, ran = waiting.pop(nxt)
                delay = (t - woken) * 1e6
                delays.append(delay)
                if delay > 100:
                    for name in set(ran):
                        culprits[name] = culprits.get(name, 0) + 1
            for pid, (_, target, ran) in waiting.items():
                if target == cpu and pid != nxt:
                    ran.append(nxt_name)
    if not delays:
        sys.exit(f"no wake-ups of threads named {prefix!r} in {sys.argv[1]}")
    delays.sort()
    n = len(delays)

    def q(p):
        return delays[min(n - 1, int(p * n))]

    print(f"wake-ups={n} p50={q(0.5):.0f}us p99={q(0.99):.0f}us p999={q(0.999):.0f}us "
          f"max={delays[-1]:.0f}us over_100us={sum(d > 100 for d in delays)} "
          f"over_300us={sum(d > 300 for d in delays)}")
    top = sorted(culprits.items(), key=lambda kv: -kv[1])[:6]
    print("ran instead during the waits over 100us (waits each name appears in):",
          ", ".join(f"{name} {count}" for name, count in top) or "-")


if __name__ == "__main__":
    main()
