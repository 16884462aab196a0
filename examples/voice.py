"""Voice without a microphone: a WAV question in, a WAV answer out.

    python examples/voice.py [question.wav] [answer.wav]

Any uncompressed 8/16/24/32-bit WAV works (stereo, 44.1 kHz...): it is converted to the
API's 24 kHz mono PCM16. Without a question file a short tone is used. Server VAD is off, so
the example commits the audio and asks for the response itself (append → commit →
response.create). Without OPENAI_API_KEY the embedded local server answers with synthetic
speech. The same from the terminal: ``rtagent chat AGENT --audio-in q.wav --audio-out a.wav``.
"""

from __future__ import annotations

import base64
import os
import sys
import tempfile
from pathlib import Path

import anyio

from rtagent import Agent, RealtimeSession, connect, read_wav, write_wav


class Narrator(Agent):
    instructions = "You are a friendly narrator. Answer in one short sentence."
    output_modalities = ["audio"]  # audio plus its transcript
    voice = "marin"
    transcription = "gpt-4o-mini-transcribe"  # show what the model heard
    turn_detection = None  # no VAD: we commit the file as one turn


async def answer(session: RealtimeSession, question: bytes) -> bytes:
    """Send one spoken turn; return the spoken reply (PCM16, 24 kHz mono)."""
    reply = bytearray()
    async with anyio.create_task_group() as tg:

        async def collect() -> None:
            async for event in session:
                if event.type == "response.output_audio.delta":
                    reply.extend(base64.b64decode(event.delta))
                elif event.type == "conversation.item.input_audio_transcription.completed":
                    print(f"heard: {event.transcript}")
                elif event.type == "response.output_audio_transcript.done":
                    print(f"said:  {event.transcript}")
                elif event.type == "response.done":
                    tg.cancel_scope.cancel()

        tg.start_soon(collect)
        await anyio.lowlevel.checkpoint()
        await session.audio.send(question)
        await session.audio.commit()
        await session.create_response()
    return bytes(reply)


async def main() -> None:
    folder = Path(tempfile.mkdtemp(prefix="rtagent-voice-"))
    question_path = Path(sys.argv[1]) if len(sys.argv) > 1 else folder / "question.wav"
    answer_path = Path(sys.argv[2]) if len(sys.argv) > 2 else folder / "answer.wav"
    if len(sys.argv) <= 1:
        from rtagent.local import sine_pcm16

        write_wav(question_path, sine_pcm16(1000, rate=16000), rate=16000)  # any rate works
    question = read_wav(question_path)  # → 24 kHz mono PCM16

    agent = Narrator()
    if os.environ.get("OPENAI_API_KEY"):
        async with connect(agent) as session:
            reply = await answer(session, question)
    else:
        from rtagent.local import LocalRealtimeServer

        print("(OPENAI_API_KEY not set: using the embedded local server)", file=sys.stderr)
        async with LocalRealtimeServer() as server, connect(agent, url=server.url) as session:
            reply = await answer(session, question)
    write_wav(answer_path, reply)
    print(f"wrote {len(reply) / 48000:.1f} s of audio to {answer_path}")


if __name__ == "__main__":
    anyio.run(main)
