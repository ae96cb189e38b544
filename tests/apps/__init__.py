"""Tests of app running (kyoukai_h2fast.apps): runners, the thread pool, eager start."""
