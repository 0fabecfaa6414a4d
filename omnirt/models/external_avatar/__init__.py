"""Talking-head models run through their upstream repositories' own scripts (FlashHead, LiveAct, LongCat-Avatar)."""

from omnirt.models.external_avatar import pipeline  # noqa: F401 - registers the models
