"""Generates benchmark packs and times commands side by side: wall time
(median of several runs) and peak resident memory of each child process."""

import os
import statistics
import subprocess
import sys
import time


def generate(path, records):
    if os.path.exists(path) and os.path.getsize(path) > 0:
        return
    seed = 0x2545F4914F6CDD1D
    mask = (1 << 64) - 1
    with open(path + ".tmp", "w") as f:
        f.write("[")
        lines = []
        for i in range(records):
            seed ^= (seed << 13) & mask
            seed ^= seed >> 7
            seed ^= (seed << 17) & mask
            watts = 200 + seed % 6000
            if i == 0:
                lines.append('{"bn":"urn:dev:prm:30001610071843_consumption/power/active/raw",'
                             f'"bt":1600041600,"bu":"W","v":{watts}}}')
            else:
                lines.append(f'{{"t":{i * 1800},"v":{watts}}}')
            if len(lines) == 100000:
                f.write(",\n".join(lines) + (",\n" if i + 1 < records else ""))
                lines = []
        if lines:
            f.write(",\n".join(lines))
        f.write("]\n")
    os.rename(path + ".tmp", path)


def run_once(argv):
    start = time.perf_counter()
    with open(os.devnull, "wb") as devnull:
        proc = subprocess.Popen(argv, stdout=devnull)
        _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    if status != 0:
        sys.exit(f"{' '.join(argv)} failed with status {status}")
    return elapsed, usage.ru_maxrss / 1024  # MiB


def compare(runs, path, commands):
    size = os.path.getsize(path)
    print(f"\ninput: {path}, {size / 1e6:.1f} MB, {runs} run(s) each")
    print(f"| command | median s | min s | max s | peak RSS MiB |")
    print(f"|---|---|---|---|---|")
    parsed = []
    for spec in commands:
        label, command = spec.split("=", 1)
        parsed.append((label, command.replace("{file}", path).split()))
    # Runs alternate between the commands, so that a change in the
    # machine's load during the run weighs on all of them alike.
    times = {label: [] for label, _ in parsed}
    rss = {label: [] for label, _ in parsed}
    for _ in range(runs):
        for label, argv in parsed:
            t, m = run_once(argv)
            times[label].append(t)
            rss[label].append(m)
    medians = []
    for label, _ in parsed:
        median = statistics.median(times[label])
        medians.append((label, median))
        print(f"| {label} | {median:.3f} | {min(times[label]):.3f} | {max(times[label]):.3f} | {max(rss[label]):.0f} |")
    if len(medians) == 2:
        (a, ta), (b, tb) = medians
        print(f"\nratio: {b} / {a} = {tb / ta:.1f}x")


if __name__ == "__main__":
    if sys.argv[1] == "generate":
        generate(sys.argv[2], int(sys.argv[3]))
    elif sys.argv[1] == "compare":
        compare(int(sys.argv[2]), sys.argv[3], sys.argv[4:])
