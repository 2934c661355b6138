"""idaw export package: PyTorch models → RTNeural JSON and ONNX, and the tools that check them.

* :mod:`export.rtneural` — ``to_rtneural`` / ``save_rtneural`` (format: export/FORMAT.md)
* :mod:`export.floats` — compact JSON with float32-exact shortest decimals
* :mod:`export.layers` — supported layers, ``CausalConv1d``, ``Stack``, model walking
* :mod:`export.reference` — numpy interpreter of RTNeural JSON (the executable spec)
* :mod:`export.onnx_export` — one-frame ONNX step graphs with explicit state, onnxruntime streamer
* :mod:`export.parity` — run several implementations on the same frames, report max differences

It knows no particular net and imports neither realtime nor sidecar: the five iDAW nets are exported and checked by
:mod:`realtime.nets.export_nets` (``python -m realtime.nets.export_nets OUT_DIR``), which calls it.
"""
