#!/bin/bash
# How much of uvloop's aiohttp server CPU is the kernel's (system time) and how much is
# Python's and uvloop's (user time), under wrk -t1 -c32 for 5 s: the system share bounds
# what any userspace stack under the same Python code can win.
#     bash benchmarks/http_cpu_split.sh [port]
set -euo pipefail
cd "$(dirname "$0")/.."
port=${1:-18080}
out=$(mktemp)
taskset -c 1 .venv/bin/python benchmarks/bench_peer.py server --loop uvloop --kind http \
    --host 127.0.0.1 --port "$port" > "$out" 2>&1 &
server=$!
trap 'kill -TERM $server 2>/dev/null || true; rm -f "$out"' EXIT
for _ in $(seq 50); do grep -q '"ready"' "$out" && break; sleep 0.1; done
pid=$(grep -o '"pid": [0-9]*' "$out" | head -1 | awk '{print $2}')
read -r u0 s0 < <(awk '{print $14, $15}' "/proc/$pid/stat")
taskset -c 0 wrk -t1 -c32 -d5s "http://127.0.0.1:$port/" | grep "Requests/sec"
read -r u1 s1 < <(awk '{print $14, $15}' "/proc/$pid/stat")
user=$((u1 - u0)); sys=$((s1 - s0))
echo "uvloop server: user $user ticks, system $sys ticks: system share $((100 * sys / (user + sys)))%," \
     "so a stack costing nothing would win at most $(python3 -c "print(f'{($user + $sys) / $user:.2f}x')")"
