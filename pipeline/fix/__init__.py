"""Fixed copies of frames: DNG opcodes and repaired pixels."""
