"""Time two commands run alternately, A B B A A B ..., so that a drift in the
machine's load falls on both alike, and print each one's median wall time
and the median of the paired differences (B minus A), in milliseconds.
usage: interleave.py RUNS 'COMMAND A' 'COMMAND B'  (run from the directory
the commands expect; their output is discarded)."""
import shlex
import statistics
import subprocess
import sys
import time


def once(cmd):
    t = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return (time.perf_counter() - t) * 1000


def main(runs, a, b):
    a, b = shlex.split(a), shlex.split(b)
    for _ in range(5):  # warm-up
        once(a)
        once(b)
    ta, tb = [], []
    for i in range(runs):
        first, second = (a, b) if i % 2 == 0 else (b, a)
        t1, t2 = once(first), once(second)
        if i % 2 == 0:
            ta.append(t1)
            tb.append(t2)
        else:
            ta.append(t2)
            tb.append(t1)
    diffs = sorted(y - x for x, y in zip(ta, tb))
    q = statistics.quantiles(diffs, n=4)
    print(f"A median {statistics.median(ta):.2f} ms, B median {statistics.median(tb):.2f} ms, "
          f"B - A median {statistics.median(diffs):+.2f} ms (quartiles {q[0]:+.2f} … {q[2]:+.2f}), {runs} pairs")


main(int(sys.argv[1]), sys.argv[2], sys.argv[3])
