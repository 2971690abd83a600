"""Giving a render's quota slot back, at most once.

Called inside the transaction that fails or cancels the render, with the render row locked, so
the refund and the status change commit together and two finishers (a cancel racing the
reconciler) cannot both refund: the second sees ``quota_refunded`` already set.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from renderlab import store
from renderlab.models import Render
from renderlab.quota import RENDER_QUOTA
from renderlab.services import Services


def refund_quota(session: Session, services: Services, render: Render) -> bool:
    """Give back the slot ``render`` consumed when it was started; False if already settled.

    The slot is only returned while the window it was spent in is still current (the limiter
    decides): an older window's slots have been replaced anyway. Either way the render is
    marked settled, so it is never considered again.
    """
    if render.quota_refunded:
        return False
    services.quota.refund(session, RENDER_QUOTA, render.user_id, consumed_at=render.created_at)
    store.update(session, render.id, now=services.clock(), quota_refunded=True)
    return True
