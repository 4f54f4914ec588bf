"""Render the example videos of the demo into assets/generated/ (the app also does it on first run)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from c2f.ui.examples import ensure_examples

if __name__ == "__main__":
    for path in ensure_examples():
        print(path, f"{path.stat().st_size / 1024:.0f} kB")
