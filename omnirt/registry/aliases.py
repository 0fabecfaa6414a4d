"""Names a client may use that are no registered id, resolved in one place for every route.

Two sources, the operator's first:

* the operator's alias map (``OMNIRT_MODEL_ALIASES``, :attr:`Settings.model_aliases`), which may also redefine the
  built-in names below;
* OpenAI's model names, built in so that the official ``openai`` client works unchanged: ``tts-1``, ``tts-1-hd`` and
  ``gpt-4o-mini-tts`` name the server's default voice (``OMNIRT_DEFAULT_VOICE_MODEL``); ``whisper-1``,
  ``gpt-4o-transcribe`` and ``gpt-4o-mini-transcribe`` the default recogniser (``OMNIRT_DEFAULT_ASR_MODEL``);
  ``dall-e-2``, ``dall-e-3``, ``gpt-image-1`` the default image model (``OMNIRT_DEFAULT_IMAGE_MODEL``).

A route that lets a client leave the model out takes the default of its task (:func:`model_for`).

OpenAI's voice names (``alloy``, ``echo``, ...) are translated per voice model by :func:`voice_for`: a model listed
in :data:`OPENAI_VOICE_TABLES` gets the voice its table names; any other model gets its own default voice (the
registered voices hibari-tts and the VITS checkpoints have one voice each).

This is separate from registry aliases (``alias_of``: another id of the same weights), which the registry resolves.
"""

from __future__ import annotations

from collections.abc import Mapping

from omnirt.settings import Settings

#: OpenAI model name -> the role whose default model serves it.
OPENAI_MODEL_ROLES: dict[str, str] = {
    "tts-1": "voice",
    "tts-1-hd": "voice",
    "gpt-4o-mini-tts": "voice",
    "whisper-1": "recogniser",
    "gpt-4o-transcribe": "recogniser",
    "gpt-4o-mini-transcribe": "recogniser",
    "dall-e-2": "image",
    "dall-e-3": "image",
    "gpt-image-1": "image",
}

#: The role a task's default model plays (tasks without one have no default: the client names the model).
TASK_ROLES: dict[str, str] = {"text2audio": "voice", "audio2text": "recogniser", "text2image": "image"}

#: OpenAI's voice names (and ``default``): each picks a voice of the model that speaks.
OPENAI_VOICES = (
    "alloy",
    "ash",
    "ballad",
    "coral",
    "echo",
    "fable",
    "nova",
    "onyx",
    "sage",
    "shimmer",
    "verse",
    "default",
)

#: Per voice model, OpenAI voice -> the model's own voice, for models with several voices. espeak-ng: its English
#: voices with its male (``+m``) and female (``+f``) variants, British English for fable (OpenAI's British voice).
OPENAI_VOICE_TABLES: dict[str, dict[str, str]] = {
    "espeak-ng": {
        "alloy": "en-us",
        "ash": "en-us+m3",
        "ballad": "en-us+m5",
        "coral": "en-us+f2",
        "echo": "en-us+m1",
        "fable": "en-gb",
        "nova": "en-us+f3",
        "onyx": "en-us+m7",
        "sage": "en-us+f4",
        "shimmer": "en-us+f1",
        "verse": "en-us+m2",
    },
}


def role_defaults(settings: Settings) -> dict[str, str]:
    """Role -> the model this server uses for it."""
    return {
        "voice": settings.default_voice_model,
        "recogniser": settings.default_asr_model,
        "image": settings.default_image_model,
    }


def builtin_aliases(settings: Settings) -> dict[str, str]:
    """OpenAI's model names -> this server's default models."""
    defaults = role_defaults(settings)
    return {name: defaults[role] for name, role in OPENAI_MODEL_ROLES.items()}


def alias_map(settings: Settings) -> dict[str, str]:
    """Every alias this server answers to: the built-in names, then the operator's map (which wins)."""
    return {**builtin_aliases(settings), **settings.model_aliases}


def resolve_alias(name: str, settings: Settings) -> str:
    """The model ``name`` stands for (``name`` itself when it is no alias)."""
    return alias_map(settings).get(name, name)


def model_for(name: str | None, task: str, settings: Settings) -> str:
    """The model a request for ``task`` runs: ``name`` through the alias map, or the task's default when empty.
    A task without a default keeps the empty name, which validation then refuses."""
    if not name:
        role = TASK_ROLES.get(task)
        return role_defaults(settings)[role] if role else ""
    return resolve_alias(name, settings)


def voice_for(
    model: str, voice: str | None, tables: Mapping[str, Mapping[str, str]] = OPENAI_VOICE_TABLES
) -> str | None:
    """The voice ``model`` speaks for ``voice``: an OpenAI voice name through the model's table (its default voice,
    None, when it has no table or the table does not list the name); any other name unchanged."""
    if voice not in OPENAI_VOICES:
        return voice
    return tables.get(model, {}).get(voice)
