"""What an edge does, as numbers: one ``Profile`` per edgecore behaviour the lab models.

Sources (``git show REF:PATH`` in the kubeedge repository):
- v1.23.1 staging/src/github.com/kubeedge/api/apis/componentconfig/edgecore/v1alpha2/default.go:
  EdgeHub.Heartbeat 15, ProjectID e632aba927ea4ac2b575ec1603d56f10, WebSocket.HandshakeTimeout 30,
  ReadDeadline 15, WriteDeadline 15; EdgeStream.HandshakeTimeout 30.
- v1.23.1 edge/pkg/edgehub/clients/wsclient/websocket.go: retryCount 5, cloudAccessSleep 5 s.
- v1.23.1 edge/pkg/edgehub/edgehub.go Start: wait 2 x Heartbeat after a break and after a failed
  Init (5 dials), then Init again -- forever.
- v1.23.1 edge/pkg/edgestream/edgestream.go Start: a 2 s ticker; tunnel.go startPing: 5 s.
- edgecore-next = v1.23.1 + the two open pull requests (not merged in the mirror's master,
  16cd8548, 2026-08-06):
  #6966 refs/pull/6966/head 5c812829 "fix(viaduct): respect read deadline on WSConnection":
  the read deadline is armed before every read and extended by every pong; pings every
  ReadDeadline/2; a read error closes the FIFO so edgehub reconnects at once.
  #6967 refs/pull/6967/head 6216e66a "feat(edgehub): exponential backoff": wait.Backoff
  {Duration 2 s, Factor 2, Jitter 0.2, Cap 30 s} for both waits; reset only when the connection
  stayed up longer than Cap.
"""
from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass

PROJECT_ID = "e632aba927ea4ac2b575ec1603d56f10"


@dataclass(frozen=True)
class Profile:
    """Every knob, with the real edgecore default; the CLI can override each."""

    name: str
    heartbeat: float = 15.0
    handshake_timeout: float = 30.0
    write_deadline: float = 15.0
    read_deadline: float = 15.0
    read_deadline_applied: bool = False  # v1.23.1: stored, never applied (conn/ws.go SetReadDeadline)
    dial_attempts: int = 5
    dial_interval: float = 5.0
    backoff: bool = False                 # False: fixed 2 x heartbeat (v1.23.1); True: #6967
    backoff_initial: float = 2.0
    backoff_factor: float = 2.0
    backoff_jitter: float = 0.2
    backoff_cap: float = 30.0
    tunnel: bool = True
    tunnel_interval: float = 2.0
    tunnel_ping: float = 5.0
    tunnel_handshake_timeout: float = 30.0
    project_id: str = PROJECT_ID

    def override(self, **changes) -> Profile:
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    def settings(self) -> dict:
        return dataclasses.asdict(self)


PROFILES = {
    "edgecore-1.23": Profile("edgecore-1.23"),
    "edgecore-next": Profile("edgecore-next", read_deadline_applied=True, backoff=True),
}


class Backoff:
    """k8s.io/apimachinery wait.Backoff.Step with Steps = MaxInt32 (backoff.go ``delay``).

    Returns Duration jittered by up to +Jitter, then multiplies Duration by Factor; once the next
    value would pass Cap it stays at Cap (jittered above it, up to Cap x 1.2).
    """

    def __init__(self, profile: Profile, rng: random.Random):
        self.profile, self.rng = profile, rng
        self.reset()

    def reset(self) -> None:
        self.duration = self.profile.backoff_initial
        self.capped = False

    def step(self) -> float:
        p = self.profile
        duration = self.duration
        if not self.capped:
            following = duration * p.backoff_factor
            if p.backoff_cap > 0 and following > p.backoff_cap:
                following, self.capped = p.backoff_cap, True
            self.duration = following
        return duration + self.rng.random() * p.backoff_jitter * duration if p.backoff_jitter > 0 else duration
