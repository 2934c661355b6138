"""The base both sides use: errors, the protocol and its schema, endpoints, key files, defaults, parameters.

It imports nothing of realtime, sidecar or export and none of torch, zmq or the native module idaw_core (numpy
and msgpack only), so a sidecar on another machine needs no engine and an engine host needs no model.
Nothing is imported here: each module is imported by name.
"""
