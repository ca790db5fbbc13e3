#!/bin/sh
# Ingest and fan-out of one `aiot run` against a three-member cluster of
# them (--replicas 3), on one machine, in one run: `aiot bench --scenario ws`
# with 1, 2 and 3 bench processes at once, each driving its own member's
# websocket gateway (nodes) and dashboard (browsers). Totals are the sums.
# Usage: deploy/clusterbench/run.sh [rate per bench] [seconds]   (BENCHMARKS.md)
set -eu
RATE=${1:-3000}
SECS=${2:-10}
DIR=$(mktemp -d)
trap 'kill $(cat "$DIR"/pids 2>/dev/null) 2>/dev/null; wait 2>/dev/null; rm -rf "$DIR"' EXIT
go build -o "$DIR/aiot" ./cmd/aiot
AIOT="$DIR/aiot"

# member I [cluster args…]: one full system on ports 184I0… (http 18480+I etc.)
member() {
	i=$1; shift
	"$AIOT" run --data "$DIR/d$i" --http 127.0.0.1:1848$i --nats-listen 127.0.0.1:1842$i \
		--mqtt-listen 127.0.0.1:1843$i --coap-listen 127.0.0.1:1844$i --mqttsn-listen 127.0.0.1:1845$i \
		--gateway-name m$i --ready-file "$DIR/ready$i" --log-level warn \
		--mqttsn-new-nodes -1 --ws-new-nodes -1 --ws-value-rate -1 "$@" 2>>"$DIR/log$i" &  # as bench's own child
	echo $! >>"$DIR/pids"
}
ready() { for i in "$@"; do while [ ! -s "$DIR/ready$i" ]; do sleep 0.2; done; done; }

# benches N: N bench processes at once, bench i on member i; prints each report line and the sums.
benches() {
	n=$1
	for i in $(seq 1 "$n"); do
		"$AIOT" bench --scenario ws --id-prefix b$i --http http://127.0.0.1:1848$i --nats nats://127.0.0.1:1842$i \
			--rate "$RATE" --duration "${SECS}s" --no-baselines --json >"$DIR/bench$i.json" 2>>"$DIR/benchlog" &
		echo $! >"$DIR/bench$i.pid"
	done
	for i in $(seq 1 "$n"); do wait "$(cat "$DIR/bench$i.pid")" || true; done
	tail -n 3 "$DIR/benchlog" >&2
	for i in $(seq 1 "$n"); do cat "$DIR/bench$i.json"; done | python3 "$(dirname "$0")/sum.py" "$n"
}

echo "== one server (aiot run, R1)"
member 1
ready 1
benches 1
kill "$(cat "$DIR/pids")"; wait 2>/dev/null || true; rm -f "$DIR/pids" "$DIR/ready1"; rm -rf "$DIR/d1"

echo "== three-member cluster (aiot run --cluster-listen … --replicas 3, on this one machine)"
ROUTES=nats-route://127.0.0.1:18491,nats-route://127.0.0.1:18492,nats-route://127.0.0.1:18493
for i in 1 2 3; do
	member "$i" --cluster-listen 127.0.0.1:1849$i --routes "$ROUTES" --server-name m$i --replicas 3
done
ready 1 2 3
for n in 1 2 3; do
	echo "-- $n bench process(es), each on its own member"
	benches "$n"
done
