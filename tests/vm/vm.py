"""The test VM from the host: boots it under qemu (software emulation), and gives a root shell in it
(a bash on the virtio serial port "ctl", tests/vm/rootfs/etc/systemd/system/vm-shell.service), the
timing system's serial line (the guest's second serial port, a pty here), and the forwarded ports."""
import base64
import os
import re
import secrets
import socket
import subprocess
import termios
import threading
import time
import tty


class Fail(Exception):
    """A check that did not hold."""


# x86_64: a Nehalem-class CPU (SSE4.2, no AVX). qemu's software emulation runs tract's AVX2 kernels
# about 2.5 times slower than its SSE ones (5.6 against 2.2 s a frame, measured); VM_CPU=max to compare.
ARCHES = {
    # qemu binary, machine options, the guest's console, its timing serial port (None: the machine has one UART)
    "x86_64": ("qemu-system-x86_64", ["-machine", "q35", "-cpu", os.environ.get("VM_CPU", "Nehalem")], "ttyS0", "/dev/ttyS1"),
    "aarch64": ("qemu-system-aarch64", ["-machine", "virt", "-cpu", "cortex-a72"], "ttyAMA0", None),
}


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Lines:
    """Lines read from a stream by a thread, each with the time it came (time.monotonic())."""

    def __init__(self, stream, log_path):
        self.lines = []
        self.lock = threading.Lock()
        self.log = open(log_path, "a", buffering=1)
        self.thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self.thread.start()

    def _read(self, stream):
        buf = b""
        while True:
            try:
                chunk = stream.read1(4096) if hasattr(stream, "read1") else os.read(stream, 4096)
            except OSError:
                chunk = b""
            if not chunk:
                break
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                text = line.decode("utf-8", "replace").rstrip("\r")
                now = time.monotonic()
                with self.lock:
                    self.lines.append((now, text))
                self.log.write(f"{now:.1f} {text}\n")

    def since(self, t0=0.0):
        with self.lock:
            return [text for (t, text) in self.lines if t >= t0]


class VM:
    def __init__(self, arch, image_dir, payload_img, out_dir, forwards, memory_mb=1024):
        self.arch = arch
        self.out = out_dir
        qemu, machine, console, self.timing_tty = ARCHES[arch]
        self.ctl_path = os.path.join(out_dir, "ctl.sock")
        if os.path.exists(self.ctl_path):
            os.unlink(self.ctl_path)
        # restrict=on: the guest reaches nothing outside; only the forwarded host ports reach it.
        fwd = ",".join(f"hostfwd=tcp:127.0.0.1:{h}-:{g}" for h, g in forwards.items())
        cmd = [qemu, *machine, "-accel", "tcg,thread=multi", "-smp", "2", "-m", str(memory_mb),
               "-display", "none", "-monitor", "none", "-no-reboot",
               "-kernel", os.path.join(image_dir, "vmlinuz"), "-initrd", os.path.join(image_dir, "initrd.img"),
               "-append", f"root=/dev/vda rw console={console} panic=-1 systemd.show_status=0 net.ifnames=1",
               "-drive", f"file={os.path.join(image_dir, 'rootfs.img')},if=virtio,format=raw,snapshot=on",
               "-drive", f"file={payload_img},if=virtio,format=raw,readonly=on",
               "-netdev", f"user,id=n0,restrict=on,{fwd}", "-device", "virtio-net-pci,netdev=n0,romfile=",
               "-device", "virtio-serial-pci",
               "-chardev", f"socket,id=ctl,path={self.ctl_path},server=on,wait=off",
               "-device", "virtserialport,chardev=ctl,name=ctl",
               "-serial", f"file:{os.path.join(out_dir, 'console.log')}"]
        if self.timing_tty:
            cmd += ["-serial", "pty"]
        self.started = time.monotonic()
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.qemu_out = Lines(self.proc.stdout, os.path.join(out_dir, "qemu.log"))
        self.sock = None
        self.buf = b""
        self.serial = None
        self.pty = None

    def _connect(self, deadline):
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise Fail(f"qemu exited ({self.proc.returncode}): {' | '.join(self.qemu_out.since()[-5:])}")
            try:
                s = socket.socket(socket.AF_UNIX)
                s.connect(self.ctl_path)
                self.sock = s
                return
            except OSError:
                time.sleep(0.2)
        raise Fail("qemu never opened its control socket")

    def wait_shell(self, timeout):
        """Waits for the guest's control shell (the system booted far enough to start it)."""
        deadline = time.monotonic() + timeout
        self._connect(deadline)
        n = 0
        while time.monotonic() < deadline:
            n += 1
            try:
                # Until the guest opens its end, qemu stops reading the socket: a ping may not go.
                self.sock.settimeout(1.0)
                self.sock.sendall(f"echo __ready_{n}\n".encode())
            except socket.timeout:
                time.sleep(2)
                continue
            if self._read_until(re.compile(rf"__ready_{n}\n".encode()), time.monotonic() + 3) is not None:
                return time.monotonic() - self.started
        raise Fail(f"no shell in the guest after {timeout} s (console: {self.out}/console.log)")

    def _read_until(self, pattern, deadline):
        while True:
            m = pattern.search(self.buf)
            if m:
                head, self.buf = self.buf[: m.start()], self.buf[m.end():]
                return head, m
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(min(left, 1.0))
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                continue
            if not chunk:
                raise Fail("the guest's control shell closed")
            self.buf += chunk

    def sh(self, script, timeout=120, check=True):
        """Runs a shell script in the guest as root (bash -e); returns its output (stdout and stderr)."""
        token = secrets.token_hex(6)
        b64 = base64.b64encode(script.encode()).decode()
        self.sock.settimeout(30)
        self.sock.sendall(f"echo {b64} | base64 -d > /run/vmtest-{token}.sh; bash -e /run/vmtest-{token}.sh </dev/null 2>&1; rc=$?; echo; echo __done_{token}_$rc\n".encode())
        got = self._read_until(re.compile(rf"\n__done_{token}_(\d+)\n".encode()), time.monotonic() + timeout)
        if got is None:
            raise Fail(f"guest command did not finish in {timeout} s: {script.strip().splitlines()[0]}")
        head, m = got
        rc = int(m.group(1))
        out = head.decode("utf-8", "replace")
        with open(os.path.join(self.out, "shell.log"), "a") as log:
            log.write(f"$ {script.strip()}\n{out}[rc {rc}]\n")
        if check and rc != 0:
            raise Fail(f"guest command failed ({rc}): {script.strip().splitlines()[0]}: {out.strip()[-400:]}")
        return out

    def open_timing_serial(self):
        """The guest's second serial port, as the timing system sees it: the pty qemu made."""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            for line in self.qemu_out.since():
                m = re.search(r"char device redirected to (/dev/pts/\d+) \(label serial1\)", line)
                if m:
                    self.pty = m.group(1)
                    fd = os.open(self.pty, os.O_RDWR | os.O_NOCTTY)
                    tty.setraw(fd)
                    attrs = termios.tcgetattr(fd)
                    attrs[4] = attrs[5] = termios.B115200
                    termios.tcsetattr(fd, termios.TCSANOW, attrs)
                    self.serial = Lines(fd, os.path.join(self.out, "serial.log"))
                    return self.pty
            time.sleep(0.2)
        raise Fail("qemu did not say which pty is the guest's second serial port")

    def stop(self):
        if self.proc.poll() is None:
            try:
                if self.sock:
                    self.sock.sendall(b"systemctl poweroff\n")
                self.proc.wait(timeout=60)
            except Exception:
                self.proc.kill()
                self.proc.wait()
