"""``Accounts``, auth's one service: registration, sign-in, sessions and tokens, profile changes,
administration, personal API keys, export and deletion. Each job lives in its own module (see ``core``); this class
puts them together. The runtime builds it once and registers it; ``deps`` hands it to handlers.

No HTTP here. Everything raises the platform's errors, which become problem+json or pages in one place.
Sign-ins (and failed ones), registrations, admin changes, exports and deletions go to the audit log;
callers pass the client address as ``ip`` (the CLI has none). A failed sign-in is recorded with a hash
of the address typed, never the password. Methods return frozen data (``Account``, ``TokenPair``),
never the documents.
"""

from __future__ import annotations

from medchat.auth.administration import Administration
from medchat.auth.api_keys import ApiKeys
from medchat.auth.credentials import Credentials
from medchat.auth.personal_data import PersonalData
from medchat.auth.profiles import Profiles
from medchat.auth.signin import SignIn


class Accounts(SignIn, Credentials, Profiles, Administration, PersonalData, ApiKeys):
    """``Accounts(settings=..., redis=..., events=...)``: one per process, shared by every request."""


__all__ = ["Accounts"]
