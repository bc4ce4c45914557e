"""The account's models: fetched once per connection, and the checks made against them.

A model key is checked before Lingma is asked, so a typo is refused with the keys there
are instead of failing in Lingma's words. The list is fetched once per connection; an
unknown key makes one fresh fetch (a model added since), at most every
``MODELS_REFRESH_S``. An empty list is what Lingma says while logged out, so it is never
cached, and it is answered with the login's error rather than "no such model".
"""

from __future__ import annotations

import time

from ..backend import CHAT_SCENE, SCENE_FOR_MODE, BackendClient, Model
from .error_texts import Audience, invalid_argument
from .health_watch import HealthWatch
from .login_check import LoginCheck
from .results import ModelList
from .views import default_key, model_info, model_keys, models_by_scene

# An unknown model key triggers one fresh fetch of the list, at most this often.
MODELS_REFRESH_S = 10.0


class ModelCache:
    """The model list of the connection it was fetched on.

    Args:
        watch: told when the fetch times out.
        login: asked to explain an empty list.
        audience: where a refusal is read (a host is pointed to ``list_models``).
    """

    def __init__(self, watch: HealthWatch, login: LoginCheck, audience: Audience) -> None:
        self._watch = watch
        self._login = login
        self._audience = audience
        # Remembered by identity (a strong reference), as the login check's client is.
        self._models: list[Model] | None = None
        self._client: BackendClient | None = None
        self._fetched_at = 0.0

    @property
    def cached(self) -> list[Model] | None:
        """The list fetched last, or None before a fetch (or after an empty one)."""
        return self._models

    async def models(self, client: BackendClient, *, refresh: bool = False) -> list[Model]:
        """The account's models, fetched once per Lingma connection and cached."""
        if refresh or not self._models or self._client is not client:
            with self._watch.control():
                models = await client.models()
            self._models = models or None
            self._client = client
            self._fetched_at = time.monotonic()
            return models
        return self._models

    async def listing(
        self, client: BackendClient, scene: str | None, configured: str | None
    ) -> ModelList:
        """The models by scene (all, or ``scene``'s), each scene's default marked;
        ``configured`` (``--model``) is the default where it is set."""
        models = await self.models(client)
        by_scene = models_by_scene(models)
        if not by_scene:
            # Lingma lists no models while logged out: say that, not "no models".
            await self._login.ensure(client, force=True)
        if scene is not None and scene not in by_scene:
            known = ", ".join(sorted(by_scene)) or "none (is Lingma logged in?)"
            raise invalid_argument(
                "scene", f"Lingma has no scene {scene!r}", f"one of: {known}, or none for all"
            )
        scenes = {
            name: [model_info(m, configured or default_key(listed, name)) for m in listed]
            for name, listed in by_scene.items()
            if scene is None or name == scene
        }
        default = configured or default_key(models, CHAT_SCENE)
        return ModelList(scenes=scenes, default_model=default)

    async def check(self, client: BackendClient, model: str, mode: str) -> None:
        """Refuse ``model`` unless it is a key for ``mode``'s scene.

        Raises:
            InvalidArgument: not a key; the refusal lists the keys there are.
            LingmaNotLoggedIn: Lingma lists no models because it is logged out.
        """
        scene = SCENE_FOR_MODE.get(mode, CHAT_SCENE)
        keys = model_keys(await self.models(client), scene)
        if model in keys:
            return
        if time.monotonic() - self._fetched_at > MODELS_REFRESH_S:
            keys = model_keys(await self.models(client, refresh=True), scene)
        if not keys:
            # No list at all usually means no login; say that rather than "unknown model".
            await self._login.ensure(client, force=True)
            return
        if model not in keys:
            # The keys are listed here; in a host, list_models adds their names.
            more = "" if self._audience == "terminal" else " (list_models shows their names)"
            raise invalid_argument(
                "model",
                f"{model!r} is not a model key for {mode} mode",
                f"one of: {', '.join(keys)}{more}",
            )

    def default_for(self, mode: str) -> str | None:
        """The model Lingma used for a question in ``mode`` that named none, if known."""
        return default_key(self._models or [], SCENE_FOR_MODE.get(mode, CHAT_SCENE))
