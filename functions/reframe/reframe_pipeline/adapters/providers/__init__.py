"""The provider adapters (Segmind, Ideogram, the local engine) and what the remote ones share."""
