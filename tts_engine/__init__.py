"""Engine code served by the Triton models; importable and testable without Triton."""
