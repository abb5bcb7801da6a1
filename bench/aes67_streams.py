#!/usr/bin/env python3
# CPU per AES67 stream (8 channels, L24, 48 kHz, 1 ms packets) on loopback: Sluice's rtpsink and
# rtpsrc against GStreamer's rtpL24pay and rtpjitterbuffer ! rtpL24depay, in one run, the same
# streams at the same time for each tool in turn. Each process's CPU time comes from wait4()'s
# rusage; CPU per stream = CPU seconds / (streams x wall seconds), and streams per core is its
# inverse. Uses the README's build (RelWithDebInfo, -O2) in build/.
#
#   python3 bench/aes67_streams.py                 # 8 streams each way, 10 s
#   STREAMS=16 DURATION=20 python3 bench/aes67_streams.py
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

STREAMS = int(os.environ.get("STREAMS", "8"))
SECONDS = int(os.environ.get("DURATION", "10"))
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PLAY = os.path.join(ROOT, "build", "demos", "sluice-play")
BASE_PORT = 41000


def start(commands):
    return [subprocess.Popen(c, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for c in commands]


def reap(procs):
    """Waits for every process; returns the CPU seconds (user + system) each used."""
    cpu = []
    for p in procs:
        _, _, usage = os.wait4(p.pid, 0)
        p.returncode = 0  # reaped here: Popen must not wait for it again
        cpu.append(usage.ru_utime + usage.ru_stime)
    return cpu


def sluice(tmp):
    receivers = [[PLAY, "-q", "--stats-json", os.path.join(tmp, f"rx{i}.json"),
                  f"rtpsrc port={BASE_PORT + 2 * i} encoding=L24 channels=8 rtcp=false timeout=1500 ! nullsink"]
                 for i in range(STREAMS)]
    senders = [[PLAY, "-q", "--duration", str(SECONDS),
                f"tone format=s24 channels=8 ! rtpsink profile=aes67 rtcp=false port={BASE_PORT + 2 * i}"]
               for i in range(STREAMS)]
    return receivers, senders


def gstreamer():
    caps = "application/x-rtp,media=audio,clock-rate=48000,encoding-name=L24,channels=8,payload=96"
    receivers = [["gst-launch-1.0", "-q", "-e", "udpsrc", f"port={BASE_PORT + 2 * i}", f"caps={caps}", "!",
                  "rtpjitterbuffer", "latency=50", "!", "rtpL24depay", "!", "fakesink"] for i in range(STREAMS)]
    senders = [["gst-launch-1.0", "-q", "audiotestsrc", "is-live=true", "samplesperbuffer=1024",
                f"num-buffers={SECONDS * 48000 // 1024}", "!",
                "audio/x-raw,format=S24BE,rate=48000,channels=8,layout=interleaved", "!",
                "rtpL24pay", "min-ptime=1000000", "max-ptime=1000000", "pt=96", "!",
                "udpsink", "host=127.0.0.1", f"port={BASE_PORT + 2 * i}"] for i in range(STREAMS)]
    return receivers, senders


def measure(name, receivers, senders, stop_receivers):
    # Receivers start first and run alongside the senders.
    rx_procs = start(receivers)
    time.sleep(0.5)
    t0 = time.monotonic()
    tx_cpu = reap(start(senders))
    wall = time.monotonic() - t0
    if stop_receivers:
        for p in rx_procs:
            p.send_signal(signal.SIGINT)
    rx_cpu = reap(rx_procs)
    send = sum(tx_cpu) / (STREAMS * wall)
    receive = sum(rx_cpu) / (STREAMS * wall)
    print(f"{name:10s} send {100 * send:6.2f} % of a core per stream ({1 / send:6.1f} streams/core), "
          f"receive {100 * receive:6.2f} % ({1 / receive:6.1f} streams/core), wall {wall:.1f} s", file=sys.stderr)
    return send, receive


def main():
    for tool in ("gst-launch-1.0",):
        if not shutil.which(tool):
            sys.exit(f"needs {tool}")
    if not os.access(PLAY, os.X_OK):
        sys.exit(f"needs {PLAY}: cmake --build build first (the README's build)")
    with tempfile.TemporaryDirectory() as tmp:
        print(f"{STREAMS} streams of 8-channel L24 at 48 kHz, 1 ms packets, each way, {SECONDS} s", file=sys.stderr)
        ours = measure("Sluice", *sluice(tmp), stop_receivers=False)
        received = [json.load(open(os.path.join(tmp, f"rx{i}.json")))["nodes"]["rtpsrc0"]["packets_received"]
                    for i in range(STREAMS)]
        theirs = measure("GStreamer", *gstreamer(), stop_receivers=True)
    print(f"packets received per Sluice stream: {min(received)} to {max(received)} (of {SECONDS * 1000})")
    print(f"send: Sluice uses {ours[0] / theirs[0]:.2f}x GStreamer's CPU per stream; "
          f"receive: {ours[1] / theirs[1]:.2f}x")
    print(json.dumps({"streams": STREAMS, "seconds": SECONDS,
                      "sluice": {"send_core_fraction": ours[0], "receive_core_fraction": ours[1]},
                      "gstreamer": {"send_core_fraction": theirs[0], "receive_core_fraction": theirs[1]}}))


if __name__ == "__main__":
    main()
