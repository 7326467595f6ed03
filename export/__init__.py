"""Model export: Coqui XTTS-v2 checkpoints -> the artifact Triton serves (`tts-gateway export xtts ...`).

- `export.xtts.export_xtts(checkpoint_dir, output_dir)`: normalised weights, config, vocabulary, studio
  speakers, the HiFi-GAN vocoder as ONNX and a manifest with hashes, written atomically.
- `export.xtts.export_tiny(output_dir)`: the tiny random-weight model used by tests and the dev stack.
- `export.hub.fetch_from_hub(dest, accept_license=True)`: the released checkpoint from the Hugging Face
  Hub, only on request and only after the Coqui Public Model License is accepted; needs network access.
"""
