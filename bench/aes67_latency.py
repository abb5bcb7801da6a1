#!/usr/bin/env python3
# End-to-end latency of an AES67 stream (8 channels, L24, 48 kHz, 1 ms packets) through a receiver
# and back out: Sluice's `rtpsrc ! rtpsink` against GStreamer's `udpsrc ! rtpjitterbuffer !
# rtpL24depay ! rtpL24pay ! udpsink`, in one run, each at the same jitter-buffer latencies.
#
# GStreamer's pipeline: udpsrc ! rtpjitterbuffer ! rtpL24depay ! rtpL24pay ! udpsink.
#
# A probe (this script) sends 1 ms packets at their times, every frame numbered in channel 0, to
# the relay on loopback, and takes what the relay sends back with the kernel's receive timestamp
# (SO_TIMESTAMPNS, so Python's own delays do not count); a frame's latency is when it came back
# minus when the packet that held it left. Both relays receive into a jitter buffer that holds a
# stream's first packet for the latency given and present every packet at its time from there
# (rtpsink and udpsink both follow their clock), so the latency measured is the configured
# latency plus what the receiver, the sender and the pacing add; frames that never came back are
# counted. Uses the README's build (RelWithDebInfo, -O2) in build/.
#
#   python3 bench/aes67_latency.py                   # 1, 2 and 5 ms, 10 s each (about 3 minutes)
#   LATENCIES=2,5 DURATION=20 python3 bench/aes67_latency.py
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

LATENCIES = [int(x) for x in os.environ.get("LATENCIES", "1,2,5").split(",")]
SECONDS = int(os.environ.get("DURATION", "10"))
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PLAY = os.path.join(ROOT, "build", "demos", "sluice-play")
TO_RELAY, BACK = 42000, 42100
CHANNELS, FRAMES = 8, 48  # 1 ms at 48 kHz
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)


def sluice_relay(latency_ms, sync=True):
    return [PLAY, "-q", f"rtpsrc port={TO_RELAY} encoding=L24 channels=8 rtcp=false latency={latency_ms} timeout=1500 ! "
                        f"rtpsink profile=aes67 rtcp=false host=127.0.0.1 port={BACK}" + ("" if sync else " sync=false")]


def gstreamer_relay(latency_ms, sink=()):
    caps = "application/x-rtp,media=audio,clock-rate=48000,encoding-name=L24,channels=8,payload=96"
    return ["gst-launch-1.0", "-q", "udpsrc", f"port={TO_RELAY}", f"caps={caps}", "!",
            "rtpjitterbuffer", f"latency={latency_ms}", "!", "rtpL24depay", "!",
            "rtpL24pay", "min-ptime=1000000", "max-ptime=1000000", "pt=96", "!",
            "udpsink", "host=127.0.0.1", f"port={BACK}", *sink]


# (name, relay for a latency, latencies): the senders present at their time (rtpsink's and
# udpsink's default), GStreamer also without its sink's default 20 ms processing deadline; and both
# sending each packet as soon as it is out of the jitter buffer (sync=false), where the latency
# only matters for gaps.
RELAYS = [
    ("Sluice rtpsrc ! rtpsink", lambda ms: sluice_relay(ms), LATENCIES),
    ("GStreamer ... ! udpsink (defaults)", lambda ms: gstreamer_relay(ms), LATENCIES),
    ("GStreamer ... ! udpsink processing-deadline=0", lambda ms: gstreamer_relay(ms, ["processing-deadline=0"]), LATENCIES),
    ("Sluice ... ! rtpsink sync=false", lambda ms: sluice_relay(ms, sync=False), LATENCIES[-1:]),
    ("GStreamer ... ! udpsink sync=false", lambda ms: gstreamer_relay(ms, ["sync=false"]), LATENCIES[-1:]),
]


def packet(seq, first_frame):
    """RTP header and 48 frames of 8-channel L24, channel 0 holding each frame's number."""
    header = struct.pack("!BBHII", 0x80, 96, seq & 0xFFFF, (first_frame * 1) & 0xFFFFFFFF, 0x5EED)
    frames = bytearray(FRAMES * CHANNELS * 3)
    for i in range(FRAMES):
        n = (first_frame + i) & 0xFFFFFF
        frames[i * CHANNELS * 3:i * CHANNELS * 3 + 3] = n.to_bytes(3, "big")
    return header + bytes(frames)


def measure(relay):
    back = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    back.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    back.bind(("127.0.0.1", BACK))
    back.settimeout(0.2)
    proc = subprocess.Popen(relay, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(1.0)  # the relay is listening
    arrivals = []  # (first frame number, kernel receive time ns)
    done = threading.Event()

    def take():
        while not done.is_set():
            try:
                data, anc, _, _ = back.recvmsg(4096, socket.CMSG_SPACE(16))
            except socket.timeout:
                continue
            at = None
            for level, kind, value in anc:
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                    sec, nsec = struct.unpack("qq", value[:16])
                    at = sec * 1_000_000_000 + nsec
            if at is None or len(data) < 12 + 3:
                continue
            cc = data[0] & 0x0F
            payload = data[12 + 4 * cc:]
            for i in range(0, len(payload) - 2, CHANNELS * 3):  # every frame: a relay may cut packets elsewhere
                arrivals.append((int.from_bytes(payload[i:i + 3], "big"), at))

    reader = threading.Thread(target=take)
    reader.start()
    out = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sent = {}  # packet number -> send time (CLOCK_REALTIME ns, the kernel stamps' clock)
    packets = SECONDS * 1000
    start = time.monotonic_ns()
    for k in range(packets):
        due = start + k * 1_000_000
        while True:
            left = due - time.monotonic_ns()
            if left <= 0:
                break
            time.sleep(left / 1e9 if left > 200_000 else 0)
        data = packet(k, 1 + k * FRAMES)  # frame numbers from 1: silence (0) is no frame
        sent[k] = time.clock_gettime_ns(time.CLOCK_REALTIME)  # after building it: the send is what counts
        out.sendto(data, ("127.0.0.1", TO_RELAY))
    time.sleep(0.5 + max(LATENCIES) / 1000)
    done.set()
    reader.join()
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
    back.close()
    latencies = []
    seen = set()
    for frame, at in arrivals:
        if frame == 0 or frame in seen:
            continue
        k = (frame - 1) // FRAMES
        if k in sent:
            seen.add(frame)
            latencies.append((at - sent[k]) / 1e6)
    latencies.sort()
    total = packets * FRAMES
    return latencies, total - len(seen)


def pct(values, p):
    return values[min(len(values) - 1, int(p / 100 * len(values)))] if values else float("nan")


def main():
    for tool in ("gst-launch-1.0",):
        if subprocess.run(["which", tool], capture_output=True).returncode != 0:
            sys.exit(f"needs {tool}")
    gst_version = subprocess.run(["gst-launch-1.0", "--version"], capture_output=True, text=True).stdout.splitlines()[1]
    print(f"machine: {os.cpu_count()} cores; {gst_version}; {SECONDS} s of 1 ms packets per row; "
          "latency = back at the probe minus sent by it (kernel receive stamps)")
    print()
    print("| relay | jitter buffer | median | p99 | p99.9 | max | frames missing |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, relay, latencies in RELAYS:
        for latency in latencies:
            values, missing = measure(relay(latency))
            print(f"| {name} | {latency} ms | {pct(values, 50):.2f} ms | {pct(values, 99):.2f} ms | "
                  f"{pct(values, 99.9):.2f} ms | {values[-1] if values else float('nan'):.2f} ms | {missing} |", flush=True)


if __name__ == "__main__":
    main()
