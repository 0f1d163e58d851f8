#!/usr/bin/env bash
# The daemon for MINUTES with every output on while its surroundings misbehave: the MQTT broker is
# restarted every 60 s, the serial port vanishes for 5 s every 90 s, HTTP clients poll the preview, and
# one frame in ten on its stdin is damaged (garbage inside a JPEG, a JPEG cut short, a 1x1 frame, a
# header announcing 9000x9000). Samples RSS, open files and threads every 5 s; prints them with the
# frame, drop and event counters at the end, and whether the daemon was alive to the last and exited 0.
# Exits 1 when it died, exited non-zero, panicked or lost a swimmer event on MQTT.
#
#   scripts/soak.sh [MINUTES] [OUT]      (default 30 minutes; OUT keeps the logs)
#
# Needs mosquitto, mosquitto-clients, socat, curl and python3 (.ci/run installs them), and a release
# build (`cargo build --release`).
set -euo pipefail
cd "$(dirname "$0")/.."
MINUTES=${1:-30}
OUT=${2:-$(mktemp -d /tmp/poolwatch-soak.XXXXXX)}
mkdir -p "$OUT"
BIN=${POOLWATCH_BIN:-target/release/poolwatch}
[ -x "$BIN" ] || { echo "soak: $BIN not found; run cargo build --release" >&2; exit 2; }
for t in mosquitto mosquitto_sub socat curl python3; do
    command -v "$t" >/dev/null || { echo "soak: $t is not installed (apt-get install mosquitto mosquitto-clients socat curl python3)" >&2; exit 2; }
done
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
MQTT_PORT=$(port)
HTTP_PORT=$(port)
DEV=$OUT/ttyPOOL
APP=$OUT/ttyTIMING
PIDS=()
cleanup() {
    for p in "${PIDS[@]}" ${BROKER:-} ${SOCAT:-} ${READER:-}; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup EXIT

# Frames: 300 of the synthetic demo venue (the embedded model's), 0.1 s apart (tracks form, end at the loop's jump, form again).
"$BIN" synth --out "$OUT/frames" --frames 300 --interval 0.1 --size 640x480 --swimmers 2..3 --seed 1 >/dev/null 2>&1

# The broker keeps sessions across its restarts, so the counting subscriber misses nothing: its
# persistence folder must be writable by the user mosquitto drops to when started as root.
chmod 755 "$OUT"
mkdir -p "$OUT/broker"
chmod 777 "$OUT/broker"
cat >"$OUT/broker.conf" <<EOF
listener $MQTT_PORT 127.0.0.1
allow_anonymous true
persistence true
persistence_location $OUT/broker/
EOF
broker() { mosquitto -c "$OUT/broker.conf" >>"$OUT/broker.log" 2>&1 & BROKER=$!; sleep 0.5; }
serial() {
    socat "pty,raw,echo=0,link=$DEV" "pty,raw,echo=0,link=$APP" 2>/dev/null & SOCAT=$!
    for _ in $(seq 50); do [ -e "$APP" ] && break; sleep 0.1; done
    # The timing system's end: everything read is kept, to be counted.
    (cat "$APP" >>"$OUT/serial.txt" 2>/dev/null || true) & READER=$!
}
broker
serial
mosquitto_sub -p "$MQTT_PORT" -i poolwatch-soak-counter -c -q 1 -t 'poolwatch/#' -v >"$OUT/mqtt.txt" 2>/dev/null &
SUB=$!
PIDS+=("$SUB")

cat >"$OUT/soak.toml" <<EOF
name = "soak"
[serial]
port = "$DEV"
[mqtt]
host = "127.0.0.1"
port = $MQTT_PORT
[http]
listen = "127.0.0.1:$HTTP_PORT"
[tracking]
min_hits = 3
max_missed = 2
EOF

# The feeder: the frames in a loop at 10 a second, one in ten damaged.
cat >"$OUT/feed.py" <<'EOF'
import glob, os, sys, time
frames = [open(p, "rb").read() for p in sorted(glob.glob(sys.argv[1] + "/*.jpg"))]
def sof_patched(j):
    # A header that announces 9000x9000: refused before decoding.
    b = bytearray(j)
    i = b.find(b"\xff\xc0")
    b[i + 5:i + 9] = (9000).to_bytes(2, "big") * 2
    return bytes(b)
faults = [
    lambda j: j[:2] + os.urandom(len(j) // 3) + j[-2:],   # garbage inside a JPEG
    lambda j: j[: len(j) // 2],                             # cut short by the next one
    lambda j: frames[0][:2] + b"\xff\xd9",                  # nothing in it
    sof_patched,
]
out = sys.stdout.buffer
n = 0
end = time.time() + float(sys.argv[2])
while time.time() < end:
    j = frames[n % len(frames)]
    if n % 10 == 9:
        j = faults[(n // 10) % len(faults)](j)
    try:
        out.write(j)
        out.flush()
    except BrokenPipeError:
        break
    n += 1
    if n % 50 == 0:
        open(sys.argv[3], "w").write(str(n))
    time.sleep(0.1)
EOF
SECONDS_TOTAL=$((MINUTES * 60))
# It outlives the run (the daemon is stopped with SIGTERM while frames still come, not by their end).
python3 "$OUT/feed.py" "$OUT/frames" "$((SECONDS_TOTAL + 600))" "$OUT/fed.txt" 2>/dev/null \
    | RUST_LOG=info "$BIN" run --stdin mjpeg --config "$OUT/soak.toml" >"$OUT/stdout.jsonl" 2>"$OUT/daemon.log" &
PID=$!
PIDS+=("$PID")
sleep 1
[ -d "/proc/$PID" ] || { echo "soak: the daemon did not start; see $OUT/daemon.log" >&2; exit 1; }
echo "soak: $MINUTES min, daemon pid $PID, logs in $OUT"

sample() { # t rss_kb fds threads
    local t=$1
    [ -d "/proc/$PID" ] || return 1
    echo "$t $(awk '/^VmRSS/{print $2}' "/proc/$PID/status") $(ls "/proc/$PID/fd" | wc -l) $(awk '/^Threads/{print $2}' "/proc/$PID/status")" >>"$OUT/samples.txt"
}
: >"$OUT/samples.txt"
start=$(date +%s)
alive=yes
while :; do
    t=$(( $(date +%s) - start ))
    [ "$t" -ge "$SECONDS_TOTAL" ] && break
    sample "$t" || { alive="no (gone after ${t} s)"; break; }
    if [ $((t % 60)) -ge 50 ] && [ ! -e "$OUT/.broker-down" ]; then
        kill "$BROKER" 2>/dev/null || true; wait "$BROKER" 2>/dev/null || true; touch "$OUT/.broker-down"
        echo "$t broker stopped" >>"$OUT/faults.txt"
    elif [ $((t % 60)) -lt 50 ] && [ -e "$OUT/.broker-down" ]; then
        broker; rm -f "$OUT/.broker-down"
        echo "$t broker started" >>"$OUT/faults.txt"
    fi
    if [ $((t % 90)) -ge 80 ] && [ ! -e "$OUT/.serial-down" ]; then
        kill "$SOCAT" "$READER" 2>/dev/null || true; wait "$SOCAT" 2>/dev/null || true; touch "$OUT/.serial-down"
        echo "$t serial port gone" >>"$OUT/faults.txt"
    elif [ $((t % 90)) -lt 80 ] && [ -e "$OUT/.serial-down" ]; then
        serial; rm -f "$OUT/.serial-down"
        echo "$t serial port back" >>"$OUT/faults.txt"
    fi
    curl -s -m 5 "http://127.0.0.1:$HTTP_PORT/health" >/dev/null || true
    curl -s -m 5 -o /dev/null "http://127.0.0.1:$HTTP_PORT/snapshot.jpg" || true
    sleep 5
done
# Everything back before the end, and the daemon reconnected (its back-off waits up to 30 s), so that
# what it kept during the last outage has gone out before it is counted.
if [ -e "$OUT/.broker-down" ]; then
    before=$(grep -c ': connected' "$OUT/daemon.log" || true)
    broker; rm -f "$OUT/.broker-down"
    for _ in $(seq 450); do
        [ "$(grep -c ': connected' "$OUT/daemon.log" || true)" -gt "$before" ] && break
        sleep 0.1
    done
fi
[ -e "$OUT/.serial-down" ] && serial && rm -f "$OUT/.serial-down"
sleep 5
curl -s -m 5 "http://127.0.0.1:$HTTP_PORT/metrics" >"$OUT/metrics.txt" || true
code=none
if [ -d "/proc/$PID" ]; then
    kill -TERM "$PID"
    for _ in $(seq 200); do [ -d "/proc/$PID" ] || break; sleep 0.1; done
fi
code=0; wait "$PID" || code=$?
sleep 1

python3 - "$OUT" "$alive" "$code" <<'EOF'
import json, sys, re
out, alive, code = sys.argv[1], sys.argv[2], sys.argv[3]
s = [list(map(int, l.split())) for l in open(f"{out}/samples.txt") if l.strip()]
def row(name, col, unit, scale=1):
    v = [x[col] / scale for x in s]
    first = next((x[col] / scale for x in s if x[0] >= 30), v[0])
    print(f"{name:<10} at 30 s {first:>8.1f} {unit}   peak {max(v):>8.1f}   at the end {v[-1]:>8.1f}")
print(f"samples: {len(s)} over {s[-1][0] if s else 0} s")
row("RSS", 1, "MB", 1024)
row("open fds", 2, "")
row("threads", 3, "")
m = {}
for l in open(f"{out}/metrics.txt", errors="replace"):
    if l.startswith("poolwatch_"):
        k, v = l.split()
        m[k[len("poolwatch_"):]] = float(v)
fed = open(f"{out}/fed.txt").read().split()
print(f"frames fed {fed[0] if fed else '?'} (to the 50); processed {m.get('frames_processed_total', 0):.0f}, "
      f"failed {m.get('frames_bad_total', 0):.0f}, dropped {m.get('frames_dropped_total', 0):.0f}; "
      f"output messages dropped {m.get('output_dropped_total', 0):.0f} (events among them {m.get('events_dropped_total', 0):.0f})")
# What stdout saw (every frame, nothing dropped): each swimmer ID is one `new`, and one `end` once it
# is gone before the last frame. MQTT must have carried the same.
ids, last = set(), set()
for l in open(f"{out}/stdout.jsonl", errors="replace"):
    try:
        r = json.loads(l)
    except ValueError:
        continue
    last = {sw["id"] for sw in r.get("swimmers", [])}
    ids |= last
want = {"new": len(ids), "end": len(ids - last)}
got = {"new": set(), "end": set()}
for l in open(f"{out}/mqtt.txt", errors="replace"):
    topic, _, payload = l.partition(" ")
    if topic.endswith("/events"):
        try:
            e = json.loads(payload)
        except ValueError:
            continue
        if e.get("event") in got:
            got[e["event"]].add(e.get("id"))
lost = len(ids - got["new"]) + len((ids - last) - got["end"])
print(f"swimmer events new/end as stdout implies {want['new']}/{want['end']}, over MQTT {len(got['new'])}/{len(got['end'])}: {lost} lost")
serial = open(f"{out}/serial.txt", errors="replace").read()
print(f"serial: {serial.count('$PWFRM')} frame sentences, {serial.count('$PWHBT')} heartbeats read")
faults = open(f"{out}/faults.txt").read().splitlines() if __import__('os').path.exists(f"{out}/faults.txt") else []
print(f"faults: {sum('broker stopped' in f for f in faults)} broker restarts, {sum('serial port gone' in f for f in faults)} serial outages")
log = open(f"{out}/daemon.log", errors="replace").read()
print(f"log: {len(log.splitlines())} lines, {log.count(' WARN ')} warnings, {log.count(' ERROR ')} errors, panics: {log.count('panicked')}")
print(f"alive to the end: {alive}; exit code after SIGTERM: {code}")
bad = [why for why, b in [("the daemon died", alive != "yes"), (f"exit code {code}", code != "0"),
                          ("a panic", "panicked" in log), (f"{lost} swimmer events lost", lost > 0)] if b]
if bad:
    print("soak FAILED: " + ", ".join(bad))
    sys.exit(1)
EOF
