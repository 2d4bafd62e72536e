"""The imgbench transmitter: sends one image N times per protocol and measures.

Transports are thin :class:`transmitter.senders.Sender` adapters; the harness
in :mod:`transmitter.runner` drives both the same way.
"""
