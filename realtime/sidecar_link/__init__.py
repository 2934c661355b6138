"""The engine side of the sidecar protocol, in the host process: the link (link.py, linkstate.py, analysis.py),
the host commands' wiring (host.py) and starting a sidecar subprocess (process.py).

realtime never imports the sidecar package: it speaks the protocol (idaw.base.protocol) over its link, and starts
a sidecar as a separate process (`python -m sidecar`). Nothing is imported here.
"""
