"""The nightly batch scanner: sources, SAFE reading, mosaics, tiling, inference, outputs, orchestration."""
