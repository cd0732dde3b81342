"""The knowledge-model trainer: a small GPT-2 that stores a graph's facts the way real LLMs do."""
