#!/usr/bin/env python3
"""Frames for the VM's camera: images (any format ImageMagick reads) to one file of packed YUYV frames
(YUV 4:2:2, BT.601 limited range: what a USB camera sends and what poolwatch's YUYV path decodes),
which the guest writes to vivid's video output in a loop.

    yuyv.py OUT.yuyv IMAGE...
"""
import subprocess
import sys

import numpy as np

# Debian's ImageMagick by its own path: a `convert` earlier on PATH may be something else (some machines
# have a stand-in in /usr/local/bin that only makes PNGs to look at).
IDENTIFY = "/usr/bin/identify"
CONVERT = "/usr/bin/convert"


def to_yuyv(rgb: np.ndarray) -> bytes:
    r, g, b = (rgb[..., i].astype(np.float64) for i in range(3))
    y = 16 + (65.738 * r + 129.057 * g + 25.064 * b) / 256
    u = 128 + (-37.945 * r - 74.494 * g + 112.439 * b) / 256
    v = 128 + (112.439 * r - 94.154 * g - 18.285 * b) / 256
    # 4:2:2: one U and one V for each pair of pixels, their mean.
    u2 = (u[:, 0::2] + u[:, 1::2]) / 2
    v2 = (v[:, 0::2] + v[:, 1::2]) / 2
    h, w = y.shape
    out = np.empty((h, w * 2), dtype=np.float64)
    out[:, 0::4] = y[:, 0::2]
    out[:, 1::4] = u2
    out[:, 2::4] = y[:, 1::2]
    out[:, 3::4] = v2
    return np.clip(np.rint(out), 0, 255).astype(np.uint8).tobytes()


def main() -> int:
    if len(sys.argv) < 3:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    size = None
    with open(sys.argv[1], "wb") as out:
        for path in sys.argv[2:]:
            wh = subprocess.run([IDENTIFY, "-format", "%w %h", path], check=True, capture_output=True, text=True).stdout.split()
            w, h = int(wh[0]), int(wh[1])
            if size is None:
                size = (w, h)
            elif size != (w, h):
                print(f"yuyv: {path} is {w}x{h}, the first frame {size[0]}x{size[1]}", file=sys.stderr)
                return 1
            raw = subprocess.run([CONVERT, path, "-depth", "8", "rgb:-"], check=True, capture_output=True).stdout
            out.write(to_yuyv(np.frombuffer(raw, dtype=np.uint8).reshape(h, w, 3)))
    print(f"{len(sys.argv) - 2} frames of {size[0]}x{size[1]} YUYV in {sys.argv[1]}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (OSError, subprocess.CalledProcessError, ValueError) as e:
        detail = getattr(e, "stderr", None)
        if isinstance(detail, bytes):
            detail = detail.decode(errors="replace")
        print(f"yuyv: {e}" + (f": {detail.strip()}" if detail and detail.strip() else ""), file=sys.stderr)
        sys.exit(1)
