"""Run a command and print its peak resident set size: `python -m benchmarks.peak_rss CMD...`.

Why a wrapper: on Linux a process's peak RSS as seen by its parent's wait4() starts at the RSS of
the process it was forked from (exec records the old address space's high-water mark), so a child
of a benchmark driver that has Django loaded would never report less than the driver's own size.
This wrapper is a small process; getrusage(RUSAGE_CHILDREN) here reports the largest of the
command and every descendant it waited for (for `rqworker --burst`, the forked work horse).
Standard library only, so that the wrapper itself stays small.
"""

import resource
import subprocess
import sys

MARK = "BENCH_PEAK_RSS "

if __name__ == "__main__":
    returncode = subprocess.call(sys.argv[1:])
    sys.stdout.flush()
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KiB on Linux
    print(f"{MARK}{peak_kib * 1024}", flush=True)
    sys.exit(returncode)
