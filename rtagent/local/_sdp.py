"""SDP for ``POST /v1/realtime/calls``: read a WebRTC offer, write a signalling-only answer.

The real service answers a browser's offer with its own media endpoint (Opus audio and
the ``oai-events`` data channel). Without a WebRTC stack (the ``webrtc`` extra) the local
server still answers, so the signalling (call id, ``Location``, the sideband) can be
tested: the answer mirrors the offer's sections with Opus, ICE credentials and a DTLS
fingerprint that are well-formed (a browser's ``setRemoteDescription`` takes it), but no
candidate, so no media ever flows. RFC 8866 (SDP), RFC 8829 (JSEP) and RFC 8841
(SCTP over DTLS) give the shapes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ._validate import Invalid
from ._wire import Ids

__all__ = ["MediaSection", "Offer", "parse_offer", "signalling_answer"]

_DIRECTIONS = {
    "sendrecv": "sendrecv",
    "sendonly": "recvonly",
    "recvonly": "sendonly",
    "inactive": "inactive",
}
"""The answer's direction for each direction of the offer (RFC 8829 §5.3.1)."""


@dataclass
class MediaSection:
    """One ``m=`` section of an offer."""

    kind: str
    """``audio``, ``video`` or ``application``."""
    protocol: str
    formats: list[str]
    mid: str | None = None
    direction: str = "sendrecv"
    rtpmap: dict[str, str] = field(default_factory=dict)
    """Payload type -> ``opus/48000/2`` and the like."""


@dataclass
class Offer:
    """The parts of an SDP offer an answer needs."""

    sections: list[MediaSection]

    @property
    def has_audio(self) -> bool:
        """Whether the offer carries an audio section (a call needs one)."""
        return any(s.kind == "audio" for s in self.sections)


def _invalid_sdp(why: str) -> Invalid:
    # Guess: the real service's text for an unusable offer is not recorded.
    return Invalid("invalid_offer", f"Invalid SDP offer: {why}.", "sdp")


def parse_offer(text: str) -> Offer:
    """Read the media sections of an SDP offer.

    Raises:
        Invalid: the text is not an SDP offer with an audio section.
    """
    lines = [line.strip() for line in text.replace("\r\n", "\n").split("\n") if line.strip()]
    if not lines or lines[0] != "v=0":
        raise _invalid_sdp("it must start with v=0")
    sections: list[MediaSection] = []
    for line in lines[1:]:
        if len(line) < 2 or line[1] != "=":
            raise _invalid_sdp(f"malformed line {line[:40]!r}")
        if line.startswith("m="):
            parts = line[2:].split()
            if len(parts) < 4:
                raise _invalid_sdp(f"malformed media line {line[:40]!r}")
            sections.append(MediaSection(parts[0], parts[2], parts[3:]))
        elif sections and line.startswith("a="):
            _attribute(sections[-1], line[2:])
    offer = Offer(sections)
    if not offer.has_audio:
        raise _invalid_sdp("it has no audio section")
    return offer


def _attribute(section: MediaSection, attribute: str) -> None:
    name, _, value = attribute.partition(":")
    if name == "mid":
        section.mid = value
    elif name in _DIRECTIONS:
        section.direction = name
    elif name == "rtpmap":
        pt, _, codec = value.partition(" ")
        section.rtpmap[pt] = codec


def signalling_answer(offer: Offer, ids: Ids) -> str:
    """A well-formed answer with no candidates: the call is signalled, no media flows.

    Audio gets Opus (else the offer's first format) and the data channel its SCTP port;
    any other section is rejected (port 0), as a service that takes only audio would.
    """
    ufrag, pwd = ids.token(8), ids.token(24)
    fingerprint = ":".join(f"{b:02X}" for b in ids.raw(32))
    bundle = [s.mid for s in offer.sections if s.mid is not None and s.kind != "video"]
    out = [
        "v=0",
        f"o=- {int(ids.hex(12), 16)} 2 IN IP4 127.0.0.1",
        "s=-",
        "t=0 0",
    ]
    if bundle:
        out.append("a=group:BUNDLE " + " ".join(bundle))
    out.append("a=msid-semantic: WMS *")
    for section in offer.sections:
        transport = [
            "c=IN IP4 0.0.0.0",
            f"a=ice-ufrag:{ufrag}",
            f"a=ice-pwd:{pwd}",
            f"a=fingerprint:sha-256 {fingerprint}",
            "a=setup:active",  # the offerer (a browser) sends actpass
        ]
        mid = [f"a=mid:{section.mid}"] if section.mid is not None else []
        if section.kind == "audio":
            pt = next(
                (p for p, codec in section.rtpmap.items() if codec.lower().startswith("opus/")),
                section.formats[0],
            )
            codec = section.rtpmap.get(pt, "opus/48000/2")
            out += [f"m=audio 9 {section.protocol} {pt}", *transport, "a=rtcp:9 IN IP4 0.0.0.0"]
            out += [
                *mid,
                f"a={_DIRECTIONS[section.direction]}",
                "a=rtcp-mux",
                f"a=rtpmap:{pt} {codec}",
            ]
            if codec.lower().startswith("opus/"):
                out.append(f"a=fmtp:{pt} minptime=10;useinbandfec=1")
        elif section.kind == "application":
            out += [f"m=application 9 {section.protocol} {' '.join(section.formats)}", *transport]
            out += [*mid, "a=sctp-port:5000", "a=max-message-size:262144"]
        else:
            out += [
                f"m={section.kind} 0 {section.protocol} {section.formats[0]}",
                "c=IN IP4 0.0.0.0",
            ]
            out += [*mid, "a=inactive"]
    return "\r\n".join(out) + "\r\n"
