# SPDX-License-Identifier: MIT
"""The Python module `sluice` driving the cases of the C++ tests (tests/nodes/test_app.cpp):
appsrc -> gain -> appsink with known samples, a live change seen at the next buffer, stop waking
an app thread blocked in push and in pull, appsink drop= under a slow app, events, stats, and bad
input raising sluice.Error with the engine's one-line message. Run by ctest as
`PYTHONPATH=<build>/python python3 tests/python/test_sluice.py`."""

import threading
import time
import unittest

import numpy

import sluice

FRAMES = 256


def ramp(block):
    return (numpy.arange(FRAMES, dtype=numpy.float32) + block * FRAMES) / 4096.0


class RoundTrip(unittest.TestCase):
    def test_known_samples_through_gain(self):
        g = sluice.parse_launch(
            f"appsrc name=in format=f32 channels=1 frames={FRAMES} ! gain db=-6.020599913 ! appsink name=out")
        g.run()
        src, sink = g.appsrc("in"), g.appsink("out")
        for b in range(6):
            src.push(ramp(b))
        src.end_of_stream()
        for b in range(6):
            s = sink.pull(timeout=5)
            self.assertIsNotNone(s)
            self.assertEqual(s.pts, b * FRAMES * 1_000_000_000 // 48000)
            self.assertEqual(s.format, "audio/f32 48000Hz 1ch")
            x = numpy.frombuffer(s.data, numpy.float32)  # the pool buffer itself
            numpy.testing.assert_allclose(x, ramp(b) / 2, rtol=1e-6)
            s.release()
        self.assertIsNone(sink.pull(timeout=5))  # end of stream
        self.assertTrue(g.wait_until_ended(5))
        g.stop()
        stats = g.stats()
        self.assertEqual(stats["nodes"]["out"]["samples_in"], 6)
        self.assertEqual(stats["nodes"]["in"]["type"], "appsrc")
        self.assertEqual(stats["clock"], "system")  # no device keeps the time here
        self.assertEqual(stats["clock_drift_ppm"], 0)
        self.assertIn("end-of-stream", [e["type"] for e in g.events()])

    def test_live_gain_change_at_the_next_buffer(self):
        g = sluice.parse_launch(f"appsrc name=in format=f32 channels=1 frames=100 ! gain name=g ! appsink name=out")
        g.run()
        src, sink = g.appsrc("in"), g.appsink("out")
        src.push(numpy.ones(100, numpy.float32))
        first = numpy.frombuffer(sink.pull(5).data, numpy.float32).copy()
        g.set_property("g", "db", -20)
        self.assertEqual(g.property("g", "db"), "-20")
        src.push(numpy.ones(100, numpy.float32))
        src.push(numpy.ones(100, numpy.float32))
        ramped = numpy.frombuffer(sink.pull(5).data, numpy.float32)
        settled = numpy.frombuffer(sink.pull(5).data, numpy.float32)
        self.assertTrue(numpy.all(first == 1.0))
        self.assertTrue(numpy.all(numpy.diff(ramped) < 0))  # a ramp, no step
        self.assertAlmostEqual(float(ramped[-1]), 0.1, places=5)
        numpy.testing.assert_allclose(settled, 0.1, rtol=1e-5)
        del ramped, settled
        g.stop()

    def test_live_mix_input_level(self):
        g = sluice.parse_launch("appsrc name=a format=f32 channels=1 frames=100 ! mix name=m sink_1::db=-20 ! "
                                "appsink name=out appsrc name=b format=f32 channels=1 frames=100 ! m.")
        g.run()
        a, b, sink = g.appsrc("a"), g.appsrc("b"), g.appsink("out")
        self.assertEqual(g.property("m", "sink_1::db"), "-20")
        a.push(numpy.ones(100, numpy.float32))
        b.push(numpy.ones(100, numpy.float32))
        first = numpy.frombuffer(sink.pull(5).data, numpy.float32).copy()
        numpy.testing.assert_allclose(first, 1.1, rtol=1e-6)
        g.set_property("m", "sink_1::db", 0)
        for _ in range(2):
            a.push(numpy.ones(100, numpy.float32))
            b.push(numpy.ones(100, numpy.float32))
        ramped = numpy.frombuffer(sink.pull(5).data, numpy.float32)
        settled = numpy.frombuffer(sink.pull(5).data, numpy.float32)
        self.assertTrue(numpy.all(numpy.diff(ramped) > 0))  # up from 1.1 to 2.0, no step
        self.assertAlmostEqual(float(ramped[-1]), 2.0, places=5)
        numpy.testing.assert_allclose(settled, 2.0, rtol=1e-6)
        with self.assertRaisesRegex(sluice.Error, "no input sink_5"):
            g.set_property("m", "sink_5::db", 0)
        del ramped, settled
        g.stop()


class Stop(unittest.TestCase):
    def test_stop_wakes_a_thread_blocked_in_push(self):
        g = sluice.parse_launch("appsrc name=in format=f32 channels=1 frames=64 max-buffers=1 ! "
                                "appsink name=out max-buffers=1")
        g.run()
        src = g.appsrc("in")
        outcome = []

        def feed():
            try:
                while True:  # nobody pulls: the pool runs dry and push waits for a buffer
                    src.push(numpy.zeros(64, numpy.float32))
            except sluice.Error as e:
                outcome.append(str(e))

        t = threading.Thread(target=feed)
        t.start()
        time.sleep(0.3)
        self.assertTrue(t.is_alive())  # blocked, with the GIL released (this thread runs)
        g.stop()
        t.join(5)
        self.assertFalse(t.is_alive())
        self.assertEqual(len(outcome), 1)
        self.assertIn("in:", outcome[0])

    def test_stop_wakes_pull(self):
        g = sluice.parse_launch("appsrc name=in format=s16 ! appsink name=out")
        g.run()
        sink = g.appsink("out")
        outcome = []

        def drain():
            try:
                sink.pull()  # no timeout: only the stop ends it
            except sluice.Error as e:
                outcome.append(str(e))

        t = threading.Thread(target=drain)
        t.start()
        time.sleep(0.2)
        g.stop()
        t.join(5)
        self.assertFalse(t.is_alive())
        self.assertEqual(outcome, ["out: pull: the graph is stopped"])

    def test_drop_oldest_under_a_slow_app(self):
        g = sluice.parse_launch("appsrc name=in format=f32 channels=1 frames=16 ! appsink name=out max-buffers=2 drop=true")
        g.run()
        src, sink = g.appsrc("in"), g.appsink("out")
        for i in range(20):
            src.push(numpy.full(16, i, numpy.float32))
        src.end_of_stream()
        self.assertTrue(g.wait_until_ended(5))
        kept = []
        while (s := sink.pull(5)) is not None:
            kept.append(float(numpy.frombuffer(s.data, numpy.float32)[0]))
            s.release()
        self.assertEqual(kept, [18.0, 19.0])
        self.assertEqual(sink.dropped, 18)
        g.stop()


class BadInput(unittest.TestCase):
    def test_errors_are_sluice_errors_with_one_line(self):
        with self.assertRaises(sluice.Error) as e:
            sluice.parse_launch("tone ! nosuchnode")
        self.assertIn("unknown node 'nosuchnode'", str(e.exception))
        g = sluice.parse_launch("appsrc name=in format=s16 channels=2 frames=64 ! gain name=g ! appsink name=out")
        with self.assertRaises(sluice.Error):
            g.appsink("in")  # an appsrc, not an appsink
        with self.assertRaisesRegex(sluice.Error, "no ptp4l listens at /nonexistent/ptp4l"):
            g.follow_ptp(socket="/nonexistent/ptp4l", wait=0.5)
        g.run()
        with self.assertRaisesRegex(sluice.Error, "only while it is stopped"):
            g.follow_ptp()
        src = g.appsrc("in")
        for bad, why in [(lambda: g.set_property("nope", "db", 1), "no node named 'nope'"),
                         (lambda: g.set_property("g", "volume", 1), "no property 'volume'"),
                         (lambda: g.set_property("in", "rate", 44100), "not live"),
                         (lambda: g.set_property("g", "db", "loud"), "not a number"),
                         (lambda: src.push(bytes(64 * 4 + 4)), "do not fit"),
                         (lambda: src.push(bytes(6)), "whole number"),
                         (lambda: src.push(numpy.zeros((8, 4), numpy.int16)[:, ::2]), "contiguous")]:
            with self.assertRaises(sluice.Error) as e:
                bad()
            self.assertIn(why, str(e.exception))
            self.assertNotIn("\n", str(e.exception))
        src.push(bytes(8))
        src.end_of_stream()
        with self.assertRaises(sluice.Error) as e:
            src.push(bytes(8))
        self.assertIn("after end_of_stream", str(e.exception))
        g.stop()


if __name__ == "__main__":
    unittest.main(verbosity=2)
