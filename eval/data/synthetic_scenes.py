"""Scenes and captions of the synthetic shapes benchmark (no pixels here: see ``synthetic.py``).

A scene is 2 or 3 objects (shape, colour, size) lined up along one axis (left to right, or top to
bottom) on a plain background. Its canonical key is ``(axis, objects in order)``: every caption states
all of it (each object's size, colour and shape, and their order), so a caption is true of exactly the
scenes with its key.

Scenes come in groups of hard distractors: a base scene and siblings that differ ONLY by swapping the
colours of two objects (attribute binding), their positions (spatial relation) or their sizes, drawn
with identical geometry. Such siblings have the same bag of words, so a bag-of-words dual encoder
cannot tell them apart while a cross-attention model can.

Uniqueness (checked over all splits together, so splits are disjoint): no two scenes share a key,
and no 2-object scene equals an ordered pair of a 3-object scene on the same axis (otherwise
"a red circle left of a blue square" would also be true of a 3-object image). Hence every caption is
true of its own image and false for every other image of its split. Splits are drawn in the order
test, val, train from one seeded stream: same seed and sizes -> identical scenes and captions.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from itertools import combinations
from typing import Iterator

import numpy as np

SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "diamond", "star", "cross")
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30), "orange": (250, 140, 0), "yellow": (245, 225, 30), "green": (30, 160, 50),
    "blue": (30, 80, 230), "purple": (140, 50, 190), "white": (255, 255, 255), "black": (15, 15, 15),
}
BACKGROUND: tuple[int, int, int] = (128, 128, 128)
SIZE_DIAMETER: dict[str, float] = {"small": 0.17, "large": 0.30}  # fraction of the image side
SIZE_WORDS: dict[str, tuple[str, ...]] = {"small": ("small", "little"), "large": ("large", "big")}
AXES: tuple[str, ...] = ("horizontal", "vertical")
SPLIT_ORDER: tuple[str, ...] = ("test", "val", "train")
PERPENDICULAR_JITTER = 0.06
TWO_OBJECT_PROBABILITY = 0.5

# {A}, {B}, {C}: objects in axis order (left to right, or top to bottom).
TEMPLATES: dict[tuple[str, int], tuple[str, ...]] = {
    ("horizontal", 2): (
        "a {A} to the left of a {B}", "a {B} to the right of a {A}",
        "there is a {A} and, on its right, a {B}", "a {A} on the left and a {B} on the right",
        "a {B} with a {A} on its left", "on the left a {A}, on the right a {B}",
    ),
    ("vertical", 2): (
        "a {A} above a {B}", "a {B} below a {A}", "there is a {A} and, under it, a {B}",
        "a {A} at the top and a {B} at the bottom", "a {B} with a {A} above it",
        "at the top a {A}, at the bottom a {B}",
    ),
    ("horizontal", 3): (
        "a {A}, a {B} and a {C} from left to right", "from right to left: a {C}, a {B} and a {A}",
        "a {B} between a {A} on the left and a {C} on the right",
        "a {A} to the left of a {B}, which is to the left of a {C}",
        "a {C} on the right, a {A} on the left and a {B} in the middle",
        "there is a {A} on the left, a {B} in the middle and a {C} on the right",
    ),
    ("vertical", 3): (
        "a {A}, a {B} and a {C} from top to bottom", "from bottom to top: a {C}, a {B} and a {A}",
        "a {B} between a {A} at the top and a {C} at the bottom",
        "a {A} above a {B}, which is above a {C}",
        "a {C} at the bottom, a {A} at the top and a {B} in the middle",
        "there is a {A} at the top, a {B} in the middle and a {C} at the bottom",
    ),
}


@dataclass(frozen=True)
class SceneObject:
    """One object: ``shape`` in SHAPES, ``colour`` in COLOURS, ``size`` small or large."""

    shape: str
    colour: str
    size: str


@dataclass(frozen=True)
class Scene:
    """Objects in order along ``axis`` and their centres (fractions of the image side, same order).

    ``group`` is shared by a base scene and its hard-distractor siblings; ``variant`` is "base",
    "colour_swap", "position_swap" or "size_swap".
    """

    axis: str
    objects: tuple[SceneObject, ...]
    centres: tuple[tuple[float, float], ...]
    group: int
    variant: str

    def key(self) -> tuple:
        """Canonical description: axis and (size, colour, shape) of each object in order."""
        return (self.axis, tuple((o.size, o.colour, o.shape) for o in self.objects))

    def pair_keys(self) -> Iterator[tuple]:
        """Keys of the 2-object scenes whose captions would also be true of this scene."""
        for i, j in combinations(range(len(self.objects)), 2):
            yield (self.axis, ((self.objects[i].size, self.objects[i].colour, self.objects[i].shape),
                               (self.objects[j].size, self.objects[j].colour, self.objects[j].shape)))


def _sample_objects(rng: np.random.Generator, count: int) -> tuple[SceneObject, ...]:
    colours = rng.choice(len(COLOURS), size=count, replace=False)
    shapes = rng.choice(len(SHAPES), size=count, replace=False)
    names = list(COLOURS)
    return tuple(SceneObject(SHAPES[s], names[c], ("small", "large")[int(rng.integers(2))])
                 for c, s in zip(colours, shapes))


def _sample_centres(rng: np.random.Generator, axis: str, count: int) -> tuple[tuple[float, float], ...]:
    """One centre per axis cell; jitter small enough that any object fits any slot without overlap."""
    cell = 1.0 / count
    slack = max(0.0, (cell - SIZE_DIAMETER["large"]) / 2 - 0.01)
    centres = []
    for k in range(count):
        along = (k + 0.5) * cell + rng.uniform(-slack, slack)
        across = 0.5 + rng.uniform(-PERPENDICULAR_JITTER, PERPENDICULAR_JITTER)
        centres.append((along, across) if axis == "horizontal" else (across, along))
    return tuple(centres)


def _swap(objects: tuple[SceneObject, ...], i: int, j: int, attribute: str) -> tuple[SceneObject, ...]:
    out = list(objects)
    if attribute == "position":
        out[i], out[j] = objects[j], objects[i]
    else:
        a, b = getattr(objects[i], attribute), getattr(objects[j], attribute)
        out[i] = replace(objects[i], **{attribute: b})
        out[j] = replace(objects[j], **{attribute: a})
    return tuple(out)


def _group(rng: np.random.Generator, group: int) -> list[Scene]:
    """A base scene and its colour-, position- and size-swapped siblings (same centres)."""
    count = 2 if rng.random() < TWO_OBJECT_PROBABILITY else 3
    axis = AXES[int(rng.integers(2))]
    objects = _sample_objects(rng, count)
    centres = _sample_centres(rng, axis, count)
    scenes = [Scene(axis, objects, centres, group, "base")]
    for attribute in ("colour", "position", "size"):
        i, j = sorted(int(v) for v in rng.choice(count, size=2, replace=False))
        swapped = _swap(objects, i, j, attribute)
        if swapped != objects:  # a size swap of two equal sizes changes nothing
            scenes.append(Scene(axis, swapped, centres, group, f"{attribute}_swap"))
    return scenes


class SceneRegistry:
    """Keys taken so far (all splits); rejects a scene that would make some caption ambiguous."""

    def __init__(self) -> None:
        self.keys: set[tuple] = set()
        self.pair_keys_of_triples: set[tuple] = set()

    def conflicts(self, scene: Scene) -> bool:
        if scene.key() in self.keys:
            return True
        if len(scene.objects) == 2:
            return scene.key() in self.pair_keys_of_triples
        return any(pair in self.keys for pair in scene.pair_keys())

    def add(self, scene: Scene) -> None:
        self.keys.add(scene.key())
        if len(scene.objects) > 2:
            self.pair_keys_of_triples.update(scene.pair_keys())


def generate_scenes(seed: int, sizes: dict[str, int], split: str, max_attempts: int = 1000) -> list[Scene]:
    """The ``sizes[split]`` scenes of ``split``; splits are drawn in SPLIT_ORDER up to ``split``.

    Groups are accepted whole (minus siblings that conflict; a group needs at least 2 scenes); the
    last group is cut to fill the split exactly. RuntimeError if no new group fits after
    ``max_attempts`` draws (scene space exhausted).
    """
    rng = np.random.default_rng(seed)
    registry = SceneRegistry()
    group_id = 0
    for name in SPLIT_ORDER[: SPLIT_ORDER.index(split) + 1]:
        scenes: list[Scene] = []
        while len(scenes) < sizes[name]:
            for _ in range(max_attempts):
                # siblings have as many objects as their base, so they cannot conflict with each other
                members = [s for s in _group(rng, group_id) if not registry.conflicts(s)]
                if len(members) >= 2 and members[0].variant == "base":
                    break
            else:
                raise RuntimeError(f"synthetic scene space exhausted after {len(scenes)} {name} scenes")
            members = members[: sizes[name] - len(scenes)]
            for scene in members:
                registry.add(scene)
            scenes.extend(members)
            group_id += 1
        if name == split:
            return scenes
    raise ValueError(f"unknown synthetic split {split!r} (known: {', '.join(SPLIT_ORDER)})")


def captions_for(scene: Scene, count: int, rng: np.random.Generator) -> list[str]:
    """``count`` distinct paraphrases, each stating every object's size, colour, shape and order."""
    templates = TEMPLATES[(scene.axis, len(scene.objects))]
    chosen = rng.permutation(len(templates))[:count]
    texts = []
    for t in chosen:
        words = {
            "ABC"[k]: f"{SIZE_WORDS[o.size][int(rng.integers(2))]} {o.colour} {o.shape}"
            for k, o in enumerate(scene.objects)
        }
        texts.append(templates[int(t)].format(**words))
    return texts
