"""A CREMA-D-shaped raw dataset of real files for the GPU check: `--actors` speakers with
`--clips` clips each, WAV audio and JPEG frame folders in CREMA-D's published layout (the
test suite's fixture writers, scaled up). Labels are learnable (a tone and a coloured bar
per emotion), so a short training is meaningful.

    python benchmarks/cremad_fixture.py --root /tmp/cremad-raw --actors 60 --clips 6
    rambench prepare cremad --root /tmp/cremad-raw
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent]

from tests.real_layouts import write_frames, write_wav  # noqa: E402

EMOTIONS = ("NEU", "HAP", "SAD", "FEA", "DIS", "ANG")
SENTENCES = ("IEO", "TIE", "IOM", "IWW", "TAI", "MTI", "IWL", "ITH", "DFA", "ITS", "TSI", "WSI")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--actors", type=int, default=60)
    parser.add_argument("--clips", type=int, default=6, help="clips per actor (at most 12)")
    parser.add_argument("--frames", type=int, default=8, help="JPEG frames per clip")
    args = parser.parse_args()
    for actor in range(args.actors):
        for j in range(args.clips):
            label = (actor + j) % len(EMOTIONS)
            clip = f"{1001 + actor}_{SENTENCES[j % len(SENTENCES)]}_{EMOTIONS[label]}_XX"
            write_wav(args.root / "AudioWAV" / f"{clip}.wav", label, seconds=3.0, rate=16000)
            write_frames(args.root / "frames" / clip, label, args.frames)
    print(f"wrote {args.actors * args.clips} clips under {args.root}")


if __name__ == "__main__":
    main()
