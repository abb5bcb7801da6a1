#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""An app on both ends of a graph, from Python: numpy makes a sine wave that goes into an appsrc,
a gain turns it down (the level changed live halfway), and the app pulls what comes out of an
appsink as numpy arrays over the pool buffers (no copy out). Prints the level at the end of
each second.

    PYTHONPATH=build/python python3 examples/python/app.py [seconds]
"""
import sys
import threading

import numpy

import sluice

RATE, FRAMES = 48000, 480


def main():
    seconds = int(sys.argv[1]) if len(sys.argv) > 1 else 4
    g = sluice.parse_launch(f"appsrc name=in format=f32 channels=1 rate={RATE} frames={FRAMES} "
                            "! gain name=level db=-6 ! appsink name=out max-buffers=8")
    src, sink = g.appsrc("in"), g.appsink("out")
    g.run()

    def produce():
        t = numpy.arange(FRAMES) / RATE
        try:
            for b in range(seconds * RATE // FRAMES):
                src.push(numpy.sin(2 * numpy.pi * 440 * (t + b * FRAMES / RATE)).astype(numpy.float32))
            src.end_of_stream()
        except sluice.Error as e:  # the graph stopped under us
            print(e, file=sys.stderr)

    producer = threading.Thread(target=produce)
    producer.start()
    peak, pulled = 0.0, 0
    per_second = RATE // FRAMES
    while (s := sink.pull(timeout=5)) is not None:
        pulled += 1
        # The peak of each second's last 100 ms (buffers queued before a change keep the old level).
        if pulled % per_second >= per_second - 10 or pulled % per_second == 0:
            peak = max(peak, float(numpy.abs(numpy.frombuffer(s.data, numpy.float32)).max()))
        s.release()  # back to the pool now rather than when collected
        if pulled % (RATE // FRAMES) == 0:
            second = pulled // (RATE // FRAMES)
            print(f"second {second}: peak {20 * numpy.log10(peak):.1f} dBFS")
            peak = 0.0
            if second == seconds // 2:
                g.set_property("level", "db", -26)
    producer.join()
    g.stop()


if __name__ == "__main__":
    main()
