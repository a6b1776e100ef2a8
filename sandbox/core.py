"""The :class:`Sandbox`: emulators for several providers, started and stopped together.

Tests and the demo create one sandbox, seed its emulators, point the project at
``sandbox.env`` and drive faults and mutations through it. Emulators exist as soon as the
sandbox is constructed (so data can be added first); sockets open only on :meth:`start`.
"""

from __future__ import annotations

from collections.abc import Iterable
from types import TracebackType
from typing import Any

from connectors import registry
from sandbox.faults import FaultInjector
from sandbox.gmail import GmailEmulator
from sandbox.protocol import Provider
from sandbox.requestlog import RequestLog
from sandbox.server import ProviderServer
from sandbox.slack import SlackEmulator

__all__ = ["Sandbox", "known_providers"]


def known_providers() -> list[str]:
    """Providers with an emulator: every entry of the provider registry."""
    return registry.names()


class Sandbox:
    """Provider emulators on 127.0.0.1, sharing one request log and one set of fault rules.

    ``time_scale=60`` makes a provider minute last one real second (quota windows and
    ``Retry-After`` shrink accordingly). ``size`` pre-populates each emulator that knows the
    preset (``small``, ``demo``, ...); without it emulators start empty.
    """

    def __init__(
        self,
        providers: Iterable[str] = ("slack",),
        *,
        seed: int = 0,
        time_scale: float = 1.0,
        size: str | None = None,
    ) -> None:
        providers = list(providers)
        unknown = [p for p in providers if p not in registry.REGISTRY]
        if unknown:
            raise ValueError(f"unknown providers {unknown}; known: {known_providers()}")
        self.seed = seed
        self.time_scale = time_scale
        self.log = RequestLog()
        self.faults = FaultInjector(seed)
        self.emulators: dict[str, Provider] = {
            name: registry.get(name).make_emulator(seed, time_scale) for name in providers
        }
        # An emulator with a server of its own (Google Ads: gRPC) is started as it is, sharing
        # the sandbox's faults and log; Google emulators share one OAuth store (see ``env``).
        self._hosted: dict[str, Any] = {
            name: e for name, e in self.emulators.items() if getattr(e, "serves_itself", False)
        }
        google_oauth = getattr(self.emulators.get("gmail"), "oauth", None)
        for emulator in self._hosted.values():
            emulator.attach(faults=self.faults, log=self.log, oauth=google_oauth)
        self._servers = {
            name: ProviderServer(emulator, faults=self.faults, log=self.log, time_scale=time_scale)
            for name, emulator in self.emulators.items()
            if name not in self._hosted
        }
        if size is not None:
            for emulator in self.emulators.values():
                populate = getattr(emulator, "populate", None)
                if populate is not None:
                    populate(size)
        self._started = False

    @property
    def slack(self) -> SlackEmulator:
        emulator = self.emulators.get("slack")
        if not isinstance(emulator, SlackEmulator):
            raise AttributeError("this sandbox has no slack emulator")
        return emulator

    @property
    def gmail(self) -> GmailEmulator:
        emulator = self.emulators.get("gmail")
        if not isinstance(emulator, GmailEmulator):
            raise AttributeError("this sandbox has no gmail emulator")
        return emulator

    def __getattr__(self, name: str) -> Any:
        emulators = self.__dict__.get("emulators", {})
        if name in emulators:
            return emulators[name]
        raise AttributeError(name)

    def start(self) -> Sandbox:
        if not self._started:
            for name, server in self._servers.items():
                server.start()
                bind = getattr(self.emulators[name], "bind", None)
                if bind is not None:  # emulators whose data carries their own URL
                    bind(server.base_url)
            for emulator in self._hosted.values():
                emulator.start()
            self._started = True
        return self

    def stop(self) -> None:
        for server in self._servers.values():
            server.stop()
        for emulator in self._hosted.values():
            emulator.stop()
        self._started = False

    def base_url(self, provider: str) -> str:
        """``http://127.0.0.1:PORT`` of one provider's server (after :meth:`start`); for an
        emulator serving itself, its HTTP side (Google Ads: the OAuth token endpoint)."""
        if provider in self._hosted:
            return str(self._hosted[provider].base_url)
        return self._servers[provider].base_url

    @property
    def env(self) -> dict[str, str]:
        """``AOS_*`` settings that point the project at the running emulators."""
        if not self._started:
            raise RuntimeError("call start() (or use `with Sandbox(...)`) before reading env")
        env: dict[str, str] = {}
        # Emulators serving themselves first: with Gmail in the sandbox too, the one Google
        # OAuth store is reached at Gmail's token URL (the Ads token endpoint serves it too).
        for emulator in self._hosted.values():
            env.update(emulator.env())
            env.update(emulator.oauth_env())
        for name, server in self._servers.items():
            env.update(self.emulators[name].env(server.base_url))
            oauth_env = getattr(self.emulators[name], "oauth_env", None)
            if oauth_env is not None:  # the connect service's consent/revoke endpoints
                env.update(oauth_env(server.base_url))
        return env

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self._started else "stopped"
        return f"Sandbox({list(self.emulators)}, seed={self.seed}, {state})"
