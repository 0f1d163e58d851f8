#!/usr/bin/env python3
"""The device on a real Linux system: boots the test VM (tests/vm/build-image.sh), installs poolwatch as
README's "Install on a Raspberry Pi" says, with the vivid camera as its camera, and checks from the host:
start through Type=notify under the unit as shipped, frames from /dev/video0, detections over MQTT (the
broker in the VM), NMEA on a real serial port (the guest's /dev/ttyS1, a pty here), reload, a clean stop
with `offline`, the watchdog restarting a daemon whose frames stopped, and the camera unplugged and back.
`--quick` (the aarch64 run): boot, start, frames, detections, the frame rate.

    vmtest.py --arch ARCH --image DIR --payload IMG --out DIR [--quick]

Prints one line a check and exits 1 at the first that fails (logs in --out: console.log, shell.log,
serial.log, mqtt.log, journal.log).
"""
import argparse
import json
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vm import VM, Fail, Lines, free_port  # noqa: E402

T0 = time.monotonic()


def say(msg):
    print(f"[{time.monotonic() - T0:6.0f} s] {msg}", flush=True)


def ok(msg):
    say(f"ok: {msg}")


def wait_for(what, fn, timeout, step=1.0):
    deadline = time.monotonic() + timeout
    while True:
        got = fn()
        if got:
            return got
        if time.monotonic() > deadline:
            raise Fail(f"{what}: not within {timeout:.0f} s")
        time.sleep(step)


def nmea_ok(line):
    m = re.fullmatch(r"\$([^*$]*)\*([0-9A-F]{2})", line.strip())
    if not m:
        return False
    x = 0
    for c in m.group(1).encode():
        x ^= c
    return x == int(m.group(2), 16)


class Mqtt:
    """Every message under poolwatch/ from the VM's broker, read on the host through the forwarded port."""

    def __init__(self, port, out):
        self.proc = subprocess.Popen(["mosquitto_sub", "-h", "127.0.0.1", "-p", str(port), "-t", "poolwatch/#", "-v", "-q", "1"],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.lines = Lines(self.proc.stdout, os.path.join(out, "mqtt.log"))

    def messages(self, since=0.0):
        out = []
        for text in self.lines.since(since):
            topic, _, payload = text.partition(" ")
            out.append((topic, payload))
        return out

    def detections_with_boxes(self, name, since=0.0):
        n = 0
        for topic, payload in self.messages(since):
            if topic == f"poolwatch/{name}/detections":
                try:
                    if json.loads(payload).get("boxes"):
                        n += 1
                except ValueError:
                    pass
        return n

    def stats(self, name, since=0.0):
        out = []
        for topic, payload in self.messages(since):
            if topic == f"poolwatch/{name}/stats":
                try:
                    out.append(json.loads(payload))
                except ValueError:
                    pass
        return out

    def stop(self):
        self.proc.kill()


def unit(vm, *props):
    out = vm.sh(f"systemctl show poolwatch -p {','.join(props)}")
    return dict(line.split("=", 1) for line in out.strip().splitlines() if "=" in line)


class Journal:
    """The daemon's journal, read as it grows: `wait` finds the first line that matches among those not
    yet taken, and takes the lines up to it; `skip` forgets what came before an action."""

    def __init__(self, vm, out):
        self.vm = vm
        self.all = []
        self.pending = []
        self.log = open(os.path.join(out, "journal.log"), "a")

    def new(self):
        """The lines logged since the last call (journalctl keeps its place in a cursor file)."""
        text = self.vm.sh("journalctl -u poolwatch -o cat --no-pager --cursor-file=/run/vmtest.cursor 2>/dev/null || true", check=False)
        lines = [line for line in text.splitlines() if line.strip()]
        self.all += lines
        for line in lines:
            self.log.write(line + "\n")
        self.log.flush()
        return lines

    def skip(self):
        self.new()
        self.pending = []

    def wait(self, what, pattern, timeout):
        rx = re.compile(pattern)

        def find():
            self.pending += self.new()
            for i, line in enumerate(self.pending):
                if rx.search(line):
                    del self.pending[: i + 1]
                    return line
            return None

        return wait_for(f"journal: {what}", find, timeout, step=2.0)


def install(vm, serial_port):
    # README, "Install on a Raspberry Pi": the same commands, from the payload disk.
    vm.sh("""
cd /mnt/payload
install -m 755 poolwatch /usr/local/bin/
install -Dm 644 systemd/poolwatch.sysusers /etc/sysusers.d/poolwatch.conf
systemd-sysusers
install -d /etc/poolwatch
install -m 640 -g poolwatch systemd/poolwatch.toml /etc/poolwatch/
install -m 644 systemd/poolwatch.service /etc/systemd/system/
""")
    # "edit: camera, lanes, serial, mqtt": the camera and broker are the example's (/dev/video0, localhost);
    # the lanes are the synthetic venue's (its frames are what the camera sees), the timing system is on
    # the VM's second serial port.
    edits = [r"s|^corners = .*|corners = [[-34, 443], [-27, 142], [545, 140], [761, 439]]|",
             r"s|^count = 8|count = 6|", r"s|^length_m = 25.0|length_m = 50.0|",
             r"s|^stats_interval_s = 10.0|stats_interval_s = 5.0|"]
    if serial_port:
        edits.append(rf"s|^port = \"/dev/ttyUSB0\"|port = \"{serial_port}\"|")
    script = "\n".join(f"sed -i '{e}' /etc/poolwatch/poolwatch.toml" for e in edits)
    if not serial_port:
        script += "\nsed -i '/^\\[serial\\]/,/^$/d' /etc/poolwatch/poolwatch.toml"
    vm.sh(script)
    # README's `sudo -u poolwatch poolwatch check-config` (no sudo in a minimal Debian: runuser).
    out = vm.sh("runuser -u poolwatch -- poolwatch check-config /etc/poolwatch/poolwatch.toml")
    ok(f"installed as README says; check-config: {out.strip().splitlines()[-1] if out.strip() else 'ok'}")


def start_feed(vm):
    vm.sh("""
mkdir -p /mnt/payload && mount -o ro /dev/vdb /mnt/payload
mkdir -p /opt/poolfeed
cp /mnt/payload/vm/poolfeed.sh /mnt/payload/vm/frames.yuyv /opt/poolfeed/
cp /mnt/payload/vm/poolfeed.service /etc/systemd/system/
systemctl daemon-reload
systemctl start poolfeed
""")
    time.sleep(3)
    state = vm.sh("systemctl is-active poolfeed", check=False).strip()
    if state != "active":
        raise Fail(f"the vivid feed did not start: {vm.sh('journalctl -u poolfeed -o cat --no-pager | tail -5', check=False)}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--arch", required=True)
    ap.add_argument("--image", required=True)
    ap.add_argument("--payload", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--boot-timeout", type=float, default=900)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    mqtt_port = free_port()
    vm = VM(args.arch, args.image, args.payload, args.out, {mqtt_port: 1883})
    mqtt = None
    try:
        booted = vm.wait_shell(args.boot_timeout)
        state = vm.sh("systemctl is-system-running --wait", check=False, timeout=600).strip().splitlines()[-1]
        ok(f"{args.arch} VM booted, shell after {booted:.0f} s, system {state}; {vm.sh('uname -r').strip()}")
        if state not in ("running", "degraded"):
            raise Fail(f"system state {state}")
        nodes = vm.sh("for d in /sys/class/video4linux/video*; do echo /dev/${d##*/} $(cat $d/name); done")
        fmts = vm.sh("v4l2-ctl -d /dev/video0 --list-formats | grep -o \"'[A-Z0-9]*'\" | tr -d \"'\" | tr '\\n' ' '")
        offered = [f for f in ("MJPG", "YUYV") if f in fmts.split()]
        if not offered:
            raise Fail(f"the camera offers neither MJPG nor YUYV: {fmts.strip()}")
        ok(f"vivid camera: {nodes.strip().replace(chr(10), ', ')}; of what poolwatch reads it offers {' and '.join(offered)} ({len(fmts.split())} formats in all)")
        timing_tty = None
        if vm.timing_tty:
            pty = vm.open_timing_serial()
            timing_tty = vm.timing_tty
            ok(f"timing system: the guest's {timing_tty} is {pty} here")
        vm.sh("systemctl is-active mosquitto")
        mqtt = Mqtt(mqtt_port, args.out)
        start_feed(vm)
        ok("pool frames looped into vivid's HDMI input (poolfeed)")
        install(vm, timing_tty)
        jr = Journal(vm, args.out)
        t = time.monotonic()
        vm.sh("systemctl daemon-reload && systemctl enable --now poolwatch", timeout=300)
        u = unit(vm, "ActiveState", "SubState", "MainPID", "NRestarts", "StatusText")
        if (u["ActiveState"], u["SubState"]) != ("active", "running"):
            raise Fail(f"after enable --now: {u} | {' | '.join(jr.new()[-5:])}")
        pid = u["MainPID"]
        ok(f"systemctl enable --now returned after {time.monotonic() - t:.1f} s (Type=notify: READY=1); active (running), status {u['StatusText']!r}")
        cpuinfo = [line for line in jr.new() if "Could not read /proc/cpuinfo" in line]
        if cpuinfo:
            raise Fail(f"the unit hides /proc/cpuinfo from tract: {cpuinfo[0]}")
        jr.pending = jr.all[:]
        cam = jr.wait("the camera opened", r"camera /dev/video0: \d+x\d+ (YUYV|MJPG)", 60)
        ok(f"journal: {cam.strip()}")
        tuned = [line.strip() for line in jr.all if "CPU optimisation" in line or "CPU part" in line]
        if tuned:
            ok(f"tract sees the CPU: {' / '.join(l.split('] ', 1)[-1] for l in tuned)}")
        n = wait_for("detections with boxes over MQTT", lambda: mqtt.detections_with_boxes("pool", t), 240, 2)
        ok(f"MQTT (host <- VM broker): {n} detection message(s) with swimmer boxes on poolwatch/pool/detections")
        if timing_tty:
            def sentences():
                lines = [line for line in vm.serial.since(t) if line.startswith("$")]
                frm = [line for line in lines if line.startswith("$PWFRM")]
                return lines if len(frm) >= 3 else None
            lines = wait_for("NMEA on the serial line", sentences, 120, 2)
            bad = [line for line in lines if not nmea_ok(line)]
            if bad:
                raise Fail(f"serial: {len(bad)} of {len(lines)} sentences with a wrong checksum, e.g. {bad[0]!r}")
            kinds = sorted({line[1:6] for line in lines})
            ok(f"serial {timing_tty}: {len(lines)} sentences, every checksum right ({', '.join(kinds)})")
        stats = wait_for("stats over MQTT", lambda: [s for s in mqtt.stats("pool", t) if s.get("processed", 0) > 0], 60, 2)
        last = stats[-1]
        ok(f"stats: state {last.get('state')}, {last.get('processed')} frames processed, {last.get('fps', 0):.2f} frames/s, latency {last.get('latency_ms', 0):.0f} ms")
        # Under emulation a frame takes seconds, near `stalled`'s 5 s when the host is busy: at least one
        # report of the run must say ok.
        wait_for("stats saying ok", lambda: [s for s in mqtt.stats("pool", t) if s.get("state") == "ok"], 60, 2)
        if args.quick:
            return
        # A minute under the unit as shipped: still the same process, never restarted.
        time.sleep(max(0.0, 60 - (time.monotonic() - t)))
        u = unit(vm, "ActiveState", "SubState", "MainPID", "NRestarts")
        if (u["ActiveState"], u["SubState"], u["MainPID"], u["NRestarts"]) != ("active", "running", pid, "0"):
            raise Fail(f"not running steadily for a minute: {u}")
        # Under emulation a frame takes about as long as `stalled`'s 5 s, so /health may say stalled
        # (503) between two frames: it must say 200 ok while frames come.
        get_health = "exec 3<>/dev/tcp/127.0.0.1/8080 && printf 'GET /health HTTP/1.0\\r\\n\\r\\n' >&3 && cat <&3"
        answers = []

        def health_ok():
            answers.append(vm.sh(get_health))
            first = answers[-1].splitlines()[0] if answers[-1].strip() else ""
            return "200" in first and '"ok"' in answers[-1]

        try:
            wait_for("/health 200 ok", health_ok, 60, 2)
        except Fail:
            raise Fail(f"/health never 200 ok in 60 s; last: {answers[-1].strip()}")
        ok(f"running for {time.monotonic() - t:.0f} s: same PID {pid}, no restart; /health 200 ok")

        # Reload: a new name moves every MQTT topic.
        jr.skip()
        t = time.monotonic()
        vm.sh("sed -i 's/^name = \"pool\"/name = \"deck\"/' /etc/poolwatch/poolwatch.toml && systemctl reload poolwatch")
        jr.wait("reloaded", r"reloaded: model", 60)
        wait_for("detections on the reloaded name", lambda: mqtt.detections_with_boxes("deck", t), 120, 2)
        u = unit(vm, "MainPID", "ActiveState")
        if u["MainPID"] != pid:
            raise Fail(f"reload restarted the daemon: {u}")
        ok("systemctl reload: the new name applied (detections on poolwatch/deck/), same PID")

        # Stop: clean exit, offline published.
        jr.skip()
        t = time.monotonic()
        vm.sh("systemctl stop poolwatch", timeout=60)
        u = unit(vm, "ActiveState", "Result", "ExecMainStatus", "ExecMainCode")
        if u["Result"] != "success" or u["ExecMainStatus"] != "0":
            raise Fail(f"stop: {u}")
        wait_for("offline on MQTT", lambda: ("poolwatch/deck/status", "offline") in mqtt.messages(t), 30, 1)
        stopped = jr.wait("stopped", r"stopped after \d+ frames", 20)
        ok(f"systemctl stop: exit 0 ({u['Result']}), 'offline' on poolwatch/deck/status; {stopped.strip()}")

        # Watchdog: frames stop (vivid drops every buffer); the daemon says so, systemd restarts it.
        vm.sh("systemctl start poolwatch", timeout=300)
        pid = unit(vm, "MainPID")["MainPID"]
        t = time.monotonic()
        wait_for("detections after start", lambda: mqtt.detections_with_boxes("deck", t), 120, 2)
        jr.skip()
        t = time.monotonic()
        vm.sh("v4l2-ctl -d /dev/video0 -c percentage_of_dropped_buffers=100")
        said = wait_for("the daemon saying frames stopped", lambda: next(
            (s for s in mqtt.stats("deck", t) if s.get("state") in ("stalled", "no_source", "failing")), None), 90, 2)
        status = wait_for("systemd's status line saying so", lambda: (lambda st: st if st.startswith(said["state"]) else None)(
            unit(vm, "StatusText")["StatusText"]), 30, 1)
        ok(f"frames stopped: MQTT stats state {said['state']!r}, systemd status {status!r}")
        jr.wait("systemd's watchdog", r"[Ww]atchdog timeout", 120)
        u = wait_for("a restart after the watchdog", lambda: (lambda u: u if int(u["NRestarts"]) >= 1 and u["MainPID"] not in ("0", pid) else None)(
            unit(vm, "NRestarts", "MainPID", "ActiveState")), 60, 2)
        ok(f"watchdog: systemd restarted it after WatchdogSec ({time.monotonic() - t:.0f} s after frames stopped), NRestarts {u['NRestarts']}")
        t = time.monotonic()
        vm.sh("v4l2-ctl -d /dev/video0 -c percentage_of_dropped_buffers=0")
        wait_for("detections once frames came back", lambda: mqtt.detections_with_boxes("deck", t), 180, 2)
        restarts = unit(vm, "NRestarts")["NRestarts"]
        ok(f"frames back: detections again, within {time.monotonic() - t:.0f} s (restarts so far {restarts})")

        # Unplugged and back: vivid's disconnect (a USB camera pulled out: the open device fails with
        # ENODEV, the node goes until every handle closes), then the module out and in again.
        t = time.monotonic()
        restarts = unit(vm, "NRestarts")["NRestarts"]
        jr.skip()
        vm.sh("v4l2-ctl -d /dev/video0 -c disconnect=1", check=False)
        gone = jr.wait("the camera lost", r"source .*(camera|/dev/video0).*(retrying|will keep trying)|no frame", 60)
        back = jr.wait("the camera reopened", r"source: camera /dev/video0", 120)
        wait_for("detections after the disconnect", lambda: mqtt.detections_with_boxes("deck", t), 180, 2)
        ok(f"camera disconnected and back: {gone.strip()[:120]!r} then {back.strip()!r}, detections again in {time.monotonic() - t:.0f} s")
        # The module out and in: it goes only while nothing holds its devices, so the frames stop first
        # (the daemon then closes the camera between tries to reopen it) and the feed stops.
        t = time.monotonic()
        jr.skip()
        vm.sh("v4l2-ctl -d /dev/video0 -c percentage_of_dropped_buffers=100 && systemctl stop poolfeed")
        removed = vm.sh("end=$((SECONDS + 120)); while [ $SECONDS -lt $end ]; do modprobe -r vivid 2>/dev/null && echo after $SECONDS s && exit 0; sleep 0.1; done; echo busy; exit 1", timeout=180)
        vm.sh("test ! -e /dev/video0")
        jr.wait("the camera gone", r"camera /dev/video0: cannot open", 60)
        vm.sh("modprobe vivid && udevadm settle && systemctl start poolfeed")
        back = jr.wait("the camera reopened after modprobe", r"source: camera /dev/video0", 120)
        wait_for("detections after modprobe", lambda: mqtt.detections_with_boxes("deck", t), 180, 2)
        u = unit(vm, "NRestarts", "ActiveState", "SubState")
        ok(f"modprobe -r vivid (removed {removed.strip()}) / modprobe vivid: logged, reopened, detections again in {time.monotonic() - t:.0f} s; {u}")
        if u["NRestarts"] != restarts:
            say(f"note: systemd restarted the daemon during the unplug ({restarts} -> {u['NRestarts']})")
    finally:
        if mqtt:
            mqtt.stop()
        vm.stop()


if __name__ == "__main__":
    try:
        main()
    except Fail as e:
        say(f"FAIL: {e}")
        sys.exit(1)
    say("all checks passed")
