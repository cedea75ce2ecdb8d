"""Ray's default token-auth notice is dropped while topo starts a local Ray, and only then."""

from __future__ import annotations

import logging

from topo.pipeline.ray_runtime import _quiet_default_token_auth

NOTICE = "Token authentication is enabled for this Ray cluster. Set RAY_AUTH_MODE=disabled to opt out."


def test_the_notice_is_dropped_only_inside_a_local_start(caplog):
    log = logging.getLogger("ray._private.authentication.authentication_token_setup")
    with caplog.at_level(logging.WARNING, logger=log.name):
        with _quiet_default_token_auth():
            log.warning(NOTICE)
            log.warning("Token authentication is disabled for this Ray cluster.")  # a real warning stays
        log.warning(NOTICE)  # outside (e.g. joining a cluster): Ray's message is untouched
    messages = [r.getMessage() for r in caplog.records]
    assert messages == ["Token authentication is disabled for this Ray cluster.", NOTICE]
