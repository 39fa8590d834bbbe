"""The SMART App Launch as two framework-neutral steps, in the manner of Authlib's core: this module decides,
a thin web adapter (smartapp/signin) turns request parameters and cookies into arguments and the results into a
redirect and cookies.

- `begin_launch`: /launch's `iss` (and `launch`) → the authorization request, plus a secret the browser keeps
  so that only it can finish this authorization.
- `complete_launch`: /callback's parameters and that secret → a launch session, plus the secret the browser
  keeps to use it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass

from . import errors
from .context import parse_launch_context
from .discovery import Discovery
from .oauth import (
    AuthorizeRequest,
    OAuthClient,
    build_authorize_request,
    fhir_user_from_claims,
    new_code_verifier,
    new_state,
)
from .registrations import Registrations
from .sessions import LaunchSession, PendingAuthorization, SessionStore, fingerprint, new_secret
from .transport import is_registration_problem

log = logging.getLogger(__name__)

#: The longest single parameter (iss, launch) Tandem accepts.
MAX_PARAM = 8192
#: The longest /launch query Tandem accepts: what fits in gunicorn's largest request line (8190 bytes) with the
#: method, path and protocol (docker/Dockerfile sets that limit).
MAX_LAUNCH_QUERY = 8100
#: How much of the EHR's error_description is kept (it is shown to the user and may be long).
MAX_ERROR_DESCRIPTION = 300


@dataclass(frozen=True)
class LaunchStarted:
    """Send the browser to `authorize`; give it `binding_secret` (for `state`) to bring back to the callback."""

    authorize: AuthorizeRequest
    state: str
    binding_secret: str


@dataclass(frozen=True)
class LaunchCompleted:
    """The new launch session; the browser keeps `secret`, without which the session cannot be used."""

    session: LaunchSession
    secret: str
    #: What the app put in its launch URL (`begin_launch`'s app_state), for choosing the first page.
    app_state: str | None = None


class LaunchFlow:
    """The launch's decisions, with the registrations, discovery, token client and session store it needs."""

    def __init__(
        self,
        registrations: Registrations,
        discovery: Discovery,
        oauth: OAuthClient,
        sessions: SessionStore,
    ) -> None:
        self.registrations = registrations
        self.discovery = discovery
        self.oauth = oauth
        self.sessions = sessions

    def begin_launch(
        self,
        params: Mapping[str, str],
        *,
        redirect_uri: str,
        query_length: int = 0,
        app_state: str | None = None,
    ) -> LaunchStarted:
        """EHR launch (`iss` + `launch`) or standalone launch (`iss` only). `app_state`: an opaque value of the
        app's own (checked by the app), kept with the pending authorization and handed back at the callback."""
        iss = params.get("iss", "").strip()
        launch_token = params.get("launch", "").strip() or None
        if not iss:
            raise errors.InvalidLaunchRequest("the launch request has no iss parameter")
        if (
            query_length > MAX_LAUNCH_QUERY
            or len(iss) > MAX_PARAM
            or (launch_token is not None and len(launch_token) > MAX_PARAM)
        ):
            raise errors.InvalidLaunchRequest("the launch request parameters are too long")
        reg = self.registrations.get(iss)
        if reg is None:
            log.warning("launch refused: issuer is not registered")
            raise errors.UnknownIssuer(
                "the EHR that launched Tandem is not in this deployment's registration file"
            )
        config = self.discovery.smart_configuration(reg.iss)
        if config.code_challenge_methods_supported and not config.supports_s256:
            raise errors.DiscoveryError("the EHR's authorization server does not support PKCE with S256")

        binding = new_secret()
        state, verifier = new_state(), new_code_verifier()
        self.sessions.save_pending(
            state,
            PendingAuthorization(
                binding=fingerprint(binding),
                iss=reg.iss,
                code_verifier=verifier,
                redirect_uri=redirect_uri,
                launch=launch_token,
                created_at=time.time(),
                app_state=app_state,
            ),
        )
        authorize = build_authorize_request(
            reg, config, redirect_uri=redirect_uri, state=state, code_verifier=verifier, launch=launch_token
        )
        log.info("launch: %s launch at %s", "EHR" if launch_token else "standalone", reg.label)
        return LaunchStarted(authorize=authorize, state=state, binding_secret=binding)

    def complete_launch(self, params: Mapping[str, str], binding_secret: str | None) -> LaunchCompleted:
        """The callback: consume the pending authorization (only with its browser's secret), exchange the code,
        validate the id_token, and start the launch session."""
        error = params.get("error")
        if error:
            # The EHR's refusal is shown even when it came back without `state` (authorization servers that
            # fail before reading the request, e.g. an unknown client, may drop it, RFC 6749 §4.1.2.1) or with
            # one this browser cannot use: showing it opens nothing. A usable state is still consumed.
            try:
                self.sessions.take_pending(params.get("state", ""), binding_secret)
            except errors.StateMismatch:
                log.info("an authorization error came back without a usable state")
            description = params.get("error_description", "")[:MAX_ERROR_DESCRIPTION]
            message = f"the EHR answered {error[:64]}" + (f": {description}" if description else "")
            detail = {"oauth_error": error[:64], "ehr_description": description or None}
            log.warning("authorization refused by the EHR: error=%s", error[:64])
            if is_registration_problem(error, description):
                raise errors.RegistrationProblem(message, **detail)
            raise errors.AuthorizationDenied(message, **detail)
        pending = self.sessions.take_pending(params.get("state", ""), binding_secret)
        code = params.get("code")
        if not code:
            raise errors.InvalidLaunchRequest("the EHR's answer has no authorization code")
        reg = self.registrations.get(pending.iss)
        if reg is None:
            raise errors.UnknownIssuer("the EHR for this launch is no longer registered")
        config = self.discovery.smart_configuration(reg.iss)
        tokens = self.oauth.exchange_code(
            reg, config, code=code, redirect_uri=pending.redirect_uri, code_verifier=pending.code_verifier
        )
        fhir_user = None
        if tokens.id_token:
            fhir_user = fhir_user_from_claims(self.oauth.validate_id_token(reg, config, tokens.id_token))
        context = parse_launch_context(tokens.raw, fhir_user=fhir_user)
        if not pending.launch and not context.patient:
            log.info("standalone launch finished without a patient in context")
        secret = new_secret()
        session = self.sessions.create(secret=secret, iss=reg.iss, tokens=tokens, context=context)
        log.info("launch session started at %s (scopes granted: %d)", reg.label, len(tokens.scope.split()))
        return LaunchCompleted(session=session, secret=secret, app_state=pending.app_state)
