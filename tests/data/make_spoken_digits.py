"""Regenerate tests/data/spoken_digits: the words zero..nine spoken by espeak-ng in 8 voice variants.

    apt-get install espeak-ng && python tests/data/make_spoken_digits.py

Clips are trimmed of silence and stored as 8 kHz 8-bit mono WAV (small; the feature extractor's 16 kHz is reached
by swiftall's resampling). Variants 0-5 are for training, 6-7 for held-out testing.
"""
import io
import subprocess
import wave
from pathlib import Path

import numpy as np

WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
VARIANTS = [("en-us", 160, 50), ("en-gb", 140, 40), ("en-gb-scotland", 170, 60), ("en-029", 150, 45),
            ("en-gb-x-rp", 130, 55), ("en-us+f3", 165, 50), ("en-gb-x-gbclan", 155, 35), ("en-us+m3", 145, 65)]
RATE = 8000


def speak(word: str, voice: str, speed: int, pitch: int) -> np.ndarray:
    data = subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "--stdout", word],
                          check=True, capture_output=True).stdout
    with wave.open(io.BytesIO(data)) as w:
        rate = w.getframerate()
        samples = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16).astype(np.float32) / 32768
    loud = np.flatnonzero(np.abs(samples) > 0.02)
    samples = samples[loud[0]: loud[-1] + 1]
    n = int(len(samples) * RATE / rate)
    return np.interp(np.linspace(0, len(samples) - 1, n), np.arange(len(samples)), samples)


def main() -> None:
    out = Path(__file__).parent / "spoken_digits"
    out.mkdir(exist_ok=True)
    for v, (voice, speed, pitch) in enumerate(VARIANTS):
        for digit, word in enumerate(WORDS):
            samples = speak(word, voice, speed, pitch)
            pcm = np.clip(samples / max(1e-6, np.abs(samples).max()) * 0.9 * 127 + 128, 0, 255).astype(np.uint8)
            with wave.open(str(out / f"{digit}_v{v}.wav"), "wb") as w:
                w.setnchannels(1)
                w.setsampwidth(1)
                w.setframerate(RATE)
                w.writeframes(pcm.tobytes())


if __name__ == "__main__":
    main()
