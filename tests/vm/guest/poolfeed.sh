#!/bin/sh
# The test VM's pool camera: vivid's HDMI capture input looped from its HDMI video output, to which
# this writes the frames of FILE (640x480 YUYV, tests/vm/yuyv.py) again and again at 60 frames a
# second. poolwatch reads the capture node as it would a USB camera's. Only in the test VM.
#
#   poolfeed.sh FILE
set -eu
frames=${1:?usage: poolfeed.sh FILE}
node() { for d in /sys/class/video4linux/video*; do [ "$(cat "$d/name")" = "$1" ] && echo "/dev/${d##*/}" && return 0; done; return 1; }
cap=$(node vivid-000-vid-cap) || { echo "poolfeed: no vivid capture node" >&2; exit 1; }
out=$(node vivid-000-vid-out) || { echo "poolfeed: no vivid output node" >&2; exit 1; }
# The input and output of type HDMI (vivid's defaults: inputs webcam, TV, S-Video, HDMI; outputs
# S-Video, HDMI), both at CEA 640x480p59.94, the capture fed from the output.
v4l2-ctl -d "$cap" -i 3 >/dev/null
v4l2-ctl -d "$out" -o 1 >/dev/null
v4l2-ctl -d "$cap" --set-dv-bt-timings index=0 >/dev/null
v4l2-ctl -d "$out" --set-dv-bt-timings index=0 >/dev/null
v4l2-ctl -d "$out" --set-fmt-video-out=width=640,height=480,pixelformat=YUYV
v4l2-ctl -d "$cap" -c loop_video=1
echo "poolfeed: $cap (HDMI in) looped from $out (HDMI out), frames from $frames"
exec v4l2-ctl -d "$out" --stream-out-mmap=4 --stream-from="$frames" --stream-loop --silent
