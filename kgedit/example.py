"""A model and graph to try the Python API on: the project's synthetic world, trained once.

Needs no data set: the graph is the deterministic synthetic world (`kg.importers.synthetic`,
the demo's graph when EVOKE is absent) and the knowledge model is trained on its facts by
`kgedit train-model`'s trainer, cached under `KGEDIT_VAR_DIR` by a hash of its inputs.
"""

from __future__ import annotations

from pathlib import Path

from editor.knowledge.presets import get_preset
from workers.demo_graph import DEMO_PEOPLE, synthetic_store
from workers.graph_models import graph_facts, train_or_reuse
from workers.settings import get_settings


def example_model(
    preset: str = "small", people: int = DEMO_PEOPLE, seed: int = 0
) -> tuple[Path, str]:
    """Return (model directory, graph URL) of a knowledge model of the synthetic world.

    The first call imports the world (`people` people, seeded) and trains the preset
    (`tiny`: about 2 minutes on a laptop CPU, `small`: 6-9); later calls reuse both.
    """
    settings = get_settings()
    store, _ = synthetic_store(settings, people, seed)
    model_dir, _ = train_or_reuse(graph_facts(store), get_preset(preset), settings.models_dir)
    return model_dir, store.url
