"""``Principal`` (the value of ``request.user``) and the guards every module puts on its routes.

They live in ``medchat.platform.identity`` so that modules which may not import ``auth`` (retrieval)
can guard their routes too; auth establishes the identity, everyone reads it.
"""

from medchat.platform.identity import (
    ANONYMOUS_REASON,
    Principal,
    current_user,
    principal_of,
    require_admin,
    require_user,
)

__all__ = ["ANONYMOUS_REASON", "Principal", "current_user", "principal_of", "require_admin", "require_user"]
