"""tempocnn's tempo of each audio file named on the command line, as JSON lines {"path", "bpm", "seconds"} on
stdout: run by benchmarks/bench_listen.py in tempocnn's own environment (it needs TensorFlow, whose wheels want an
older numpy than the project's), never imported by the project.

Set that environment up with `make tempocnn-env` (python3.11 -m venv .venv-tempocnn; pip install tempocnn: its
weights ship inside the wheel, nothing is downloaded at run time).
"""

import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TensorFlow's start-up chatter goes to stderr otherwise


def main() -> int:
    """Estimate and print; returns the exit status."""
    from tempocnn.classifier import TempoClassifier
    from tempocnn.feature import read_features

    results = sys.stdout
    sys.stdout = sys.stderr  # Keras draws progress bars on stdout; only the JSON lines go there
    classifier = TempoClassifier("cnn")  # the model of the TempoCNN paper (Schreiber and Müller, ISMIR 2018)
    for path in sys.argv[1:]:
        started = time.perf_counter()
        bpm = float(classifier.estimate_tempo(read_features(path), interpolate=False))
        results.write(json.dumps({"path": path, "bpm": bpm, "seconds": time.perf_counter() - started}) + "\n")
        results.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
