"""The sample images and example sidecars under examples/, as the demo and serve put them in the bucket."""

from __future__ import annotations

from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
IMAGES = EXAMPLES / "images"
SIDECARS = EXAMPLES / "sidecars"
# Sample image -> where the demo uploads it below INPUT_PREFIX; examples/sidecars configures each place.
UPLOADS = {
    "astronaut.png": "astronaut.png",
    "rocket.jpg": "rocket.jpg",
    "chelsea.png": "gallery/chelsea.png",
    "coffee.png": "gallery/coffee.png",
    # Stored sideways with EXIF orientation 6, as phones do: the pipeline prepares it upright.
    "rocket-phone.jpg": "phone/rocket-phone.jpg",
}


def sidecar_seed(input_prefix: str) -> dict[str, bytes]:
    """Bucket key -> content of every example sidecar: examples/sidecars mirrors the bucket below
    INPUT_PREFIX."""
    return {
        input_prefix + path.relative_to(SIDECARS).as_posix(): path.read_bytes()
        for path in sorted(SIDECARS.rglob("*.json"))
    }
