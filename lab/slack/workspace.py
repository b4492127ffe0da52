"""Who and where: the lab workspace's team, bot, channels, users and user groups, with ids.

Shared by the Web API fake (which answers ``conversations.info``, ``users.info``…) and the sender
(which puts the same ids in the events it signs), so both sides of a test agree on who is who.
Ids follow Slack's shapes: ``T…`` team, ``C…`` channel, ``D…`` direct message, ``U…`` user,
``B…`` bot, ``A…`` app, ``S…`` user group.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class User:
    id: str
    name: str
    real_name: str
    is_bot: bool = False
    tz: str = "Europe/Amsterdam"

    def info(self, team_id: str) -> dict[str, Any]:
        """The ``user`` object of ``users.info``."""
        return {
            "id": self.id,
            "team_id": team_id,
            "name": self.name,
            "deleted": False,
            "real_name": self.real_name,
            "tz": self.tz,
            "is_admin": False,
            "is_owner": False,
            "is_bot": self.is_bot,
            "is_app_user": False,
            "profile": {
                "real_name": self.real_name,
                "display_name": self.name,
                "email": None if self.is_bot else f"{self.name}@example.com",
                "team": team_id,
            },
        }


@dataclass(frozen=True)
class Channel:
    id: str
    name: str
    is_private: bool = False
    members: tuple[str, ...] | None = None
    """User ids in the channel; None means everyone in the workspace."""
    im_user: str | None = None
    """For a direct-message channel (``D…``): the user the bot talks with."""

    @property
    def is_im(self) -> bool:
        return self.im_user is not None

    @property
    def channel_type(self) -> str:
        """As in ``message`` events: ``channel``, ``group`` (private) or ``im``."""
        if self.is_im:
            return "im"
        return "group" if self.is_private else "channel"

    def has_member(self, user_id: str) -> bool:
        return self.members is None or user_id in self.members

    def info(self) -> dict[str, Any]:
        """The ``channel`` object of ``conversations.info``."""
        if self.is_im:
            return {"id": self.id, "is_im": True, "user": self.im_user, "is_open": True}
        return {
            "id": self.id,
            "name": self.name,
            "name_normalized": self.name,
            "is_channel": not self.is_private,
            "is_group": self.is_private,
            "is_im": False,
            "is_mpim": False,
            "is_private": self.is_private,
            "is_archived": False,
            "is_general": False,
            "is_member": True,
            "created": 1700000000,
            "topic": {"value": "", "creator": "", "last_set": 0},
            "purpose": {"value": "", "creator": "", "last_set": 0},
        }


@dataclass(frozen=True)
class UserGroup:
    id: str
    handle: str
    name: str
    users: tuple[str, ...]

    def info(self, team_id: str, *, include_users: bool) -> dict[str, Any]:
        """One entry of ``usergroups.list``."""
        group: dict[str, Any] = {
            "id": self.id,
            "team_id": team_id,
            "is_usergroup": True,
            "name": self.name,
            "description": "",
            "handle": self.handle,
            "is_external": False,
            "date_create": 1700000000,
            "date_update": 1700000000,
            "date_delete": 0,
            "user_count": len(self.users),
        }
        if include_users:
            group["users"] = list(self.users)
        return group


BOT = User(id="U0OPSBOT01", name="opsbot", real_name="opsbot", is_bot=True)
ALICE = User(id="U0ALICE001", name="alice", real_name="Alice Approver")
BOB = User(id="U0BOB00001", name="bob", real_name="Bob Builder")
CAROL = User(id="U0CAROL001", name="carol", real_name="Carol Oncall")


def _default_channels() -> tuple[Channel, ...]:
    return (
        Channel(id="C0GENAIALR", name="genai-alerts"),
        Channel(id="C0GENAICRT", name="genai-critical"),
        Channel(id="C0GENAIWRN", name="genai-warnings"),
        Channel(id="D0ALICEDM1", name="", im_user=ALICE.id),
    )


def _default_groups() -> tuple[UserGroup, ...]:
    return (
        UserGroup(id="S0SREAPPR1", handle="sre-approvers", name="SRE approvers", users=(ALICE.id,)),
    )


@dataclass(frozen=True)
class Workspace:
    """Defaults: channels #genai-alerts, #genai-critical, #genai-warnings and a DM with alice;
    users alice (in @sre-approvers), bob and carol; the bot user ``opsbot``."""

    team_id: str = "T0OPSLAB01"
    team_name: str = "opsbot-lab"
    domain: str = "opsbot-lab"
    app_id: str = "A0OPSBOT01"
    bot_id: str = "B0OPSBOT01"
    bot: User = BOT
    users: tuple[User, ...] = (ALICE, BOB, CAROL)
    channels: tuple[Channel, ...] = field(default_factory=_default_channels)
    usergroups: tuple[UserGroup, ...] = field(default_factory=_default_groups)
    verification_token: str = "lab-verification-token"  # noqa: S105 -- not a secret
    """The deprecated ``token`` field Slack still puts in payloads; the bot must not rely on it."""

    def channel(self, ref: str) -> Channel | None:
        """A channel by id, or by name with or without ``#``."""
        name = ref.removeprefix("#")
        for channel in self.channels:
            if ref == channel.id or (channel.name and name == channel.name):
                return channel
        return None

    def user(self, ref: str) -> User | None:
        """A user (or the bot) by id or name."""
        for user in (self.bot, *self.users):
            if ref in (user.id, user.name):
                return user
        return None

    def usergroup(self, ref: str) -> UserGroup | None:
        """A user group by id or handle (``@`` optional)."""
        handle = ref.removeprefix("@")
        for group in self.usergroups:
            if ref == group.id or handle == group.handle:
                return group
        return None

    def im_with(self, user_id: str) -> Channel | None:
        for channel in self.channels:
            if channel.im_user == user_id:
                return channel
        return None
