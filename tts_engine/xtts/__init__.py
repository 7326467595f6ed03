"""XTTS-v2 serving engine: continuous batching of the GPT decode, windowed vocoding."""
