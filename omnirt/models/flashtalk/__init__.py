"""SoulX-FlashTalk through its resident server (proxy or supervised); ``pipeline`` registers it."""

from omnirt.models.flashtalk import pipeline  # noqa: F401 - registers the family
