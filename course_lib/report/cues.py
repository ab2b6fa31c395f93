"""Which cue a model learned, in words: accuracy on the synthetic data's cue-removal test sets
(layout only, texture only) against chance, for chapter 01's families and chapter 03's models."""

from __future__ import annotations

from collections.abc import Mapping

from course_lib.config import Profile
from course_lib.plots.style import family_label
from course_lib.report.inductive_bias import C1_FAMILIES
from course_lib.report.prose import above_chance, and_join, versus_chance


def read_cues(accuracy: Mapping[str, float], chance: float, images: int) -> tuple[str, ...]:
    """The cues that alone carry a model above chance (95 % interval of ``images`` draws), of
    ``("texture", "layout")``."""
    return tuple(
        cue
        for cue, cues in (("texture", "high"), ("layout", "low"))
        if above_chance(accuracy[cues], chance, images)
    )


def relied_cue(accuracy: Mapping[str, float], chance: float, images: int) -> str:
    """The cue a model relies on more: ``"texture"``, ``"layout"``, ``"both"`` (equal
    accuracies) or ``"neither"`` (no single cue carries it above chance, :func:`read_cues`)."""
    high, low = accuracy["high"], accuracy["low"]
    if not read_cues(accuracy, chance, images):
        return "neither"
    if high == low:
        return "both"
    return "texture" if high > low else "layout"


def cue_sentence(family: str, accuracy: Mapping[str, float], chance: float, images: int) -> str:
    """A model's accuracy on the texture-only and layout-only images, each against chance (95 %
    interval of ``images`` draws), and the cue it relies on more."""
    high, low = accuracy["high"], accuracy["low"]
    high_vs, low_vs = (versus_chance(a / 100, chance / 100, images) for a in (high, low))
    reads = {
        "neither": "neither cue alone carries it above chance",
        "both": "it reads both cues alike",
        "texture": "it relies more on the texture",
        "layout": "it relies more on the layout",
    }[relied_cue(accuracy, chance, images)]
    return (
        f"The {family_label(family)} scores {high:.0f} % on texture-only images ({high_vs}) and "
        f"{low:.0f} % on layout-only images ({low_vs}), {accuracy['both']:.0f} % with both "
        f"cues: {reads}."
    )


def cue_reading(
    cues: Mapping[str, Mapping[str, float]], profile: Profile, chance: float, images: int
) -> str:
    """Which cue each C1 family learned (accuracy on the cue-removal test sets, keyed by model
    name) and what that means for this chapter's comparisons: whether the families read the
    same cues above chance (95 % interval of ``images`` draws). Empty ``cues``: data without
    cue-removal test sets."""
    if not cues:
        return "This profile's data have no cue-removal test sets (only the synthetic data do)."
    sentences, reads = [], {}
    for family in C1_FAMILIES:
        accuracy = cues[profile.models[family]]
        sentences.append(cue_sentence(family, accuracy, chance, images))
        reads[family] = read_cues(accuracy, chance, images)
    groups: dict[tuple[str, ...], list[str]] = {}
    for family, cue_set in reads.items():
        groups.setdefault(cue_set, []).append(family_label(family))
    if len(groups) == 1:
        (cue_set,) = groups
        if not cue_set:
            return " ".join([*sentences, "No family reads a single cue above chance on its own."])
        tail = (
            f"All three read {_cue_words(cue_set)} above chance, so C1 compares how well each "
            "architecture fits the same cues."
        )
    else:
        listed = [
            f"{and_join([f'the {name}' for name in names])}: {_cue_words(cue_set)}"
            for cue_set, names in groups.items()
        ]
        tail = (
            f"The families do not read the same cues above chance ({'; '.join(listed)}), so "
            "this chapter's comparisons measure which cues a family picks up within the budget as "
            "much as how well its architecture fits them; chapter 03 shows how the balance of "
            "the two cues decides that."
        )
    return " ".join([*sentences, tail])


def _cue_words(cue_set: tuple[str, ...]) -> str:
    """("texture", "layout") → "the texture and the layout"; () → "neither cue"."""
    return and_join([f"the {cue}" for cue in cue_set]) if cue_set else "neither cue"


__all__ = ["cue_reading", "cue_sentence", "read_cues", "relied_cue"]
