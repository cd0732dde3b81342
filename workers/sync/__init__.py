"""The sync loop: agreement between a model and the graph, and the jobs that restore it."""
