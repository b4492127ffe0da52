"""The Web API methods the fake answers, each ``(state, args) -> response`` in Slack's shapes.

Arguments arrive already decoded (form or JSON alike); a method raises ``SlackError(code)`` for
Slack's documented error codes. The response dicts omit ``ok``: the server adds it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from lab.slack.state import Message, SlackError, SlackState, Upload

Args = dict[str, Any]
Method = Callable[[SlackState, Args], dict[str, Any]]

MAX_TEXT = 40_000
"""chat.postMessage truncates at 40,000 characters; the fake refuses instead (msg_too_long)."""
MAX_BLOCKS = 50


def _need(args: Args, name: str, error: str = "invalid_arguments") -> Any:
    value = args.get(name)
    if value is None or value == "":
        raise SlackError(error)
    return value


def _flag(value: Any) -> bool:
    """A boolean argument: JSON true, or "1"/"true" in a form (slack-sdk sends "1"/"0")."""
    return value is True or str(value).lower() in ("1", "true")


def _content(args: Args) -> Message:
    """text / blocks / attachments / metadata of a message, validated like Slack."""
    text = args.get("text")
    blocks = args.get("blocks")
    attachments = args.get("attachments")
    if not text and not blocks and not attachments:
        raise SlackError("no_text")
    if text and len(text) > MAX_TEXT:
        raise SlackError("msg_too_long")
    if blocks is not None and (
        not isinstance(blocks, list)
        or len(blocks) > MAX_BLOCKS
        or not all(isinstance(b, dict) and b.get("type") for b in blocks)
    ):
        raise SlackError("invalid_blocks")
    content: Message = {"text": text or ""}
    for key in ("blocks", "attachments", "metadata"):
        if args.get(key) is not None:
            content[key] = args[key]
    return content


def _bot_message(state: SlackState, content: Message) -> Message:
    w = state.workspace
    return {
        "user": w.bot.id,
        "bot_id": w.bot_id,
        "app_id": w.app_id,
        "team": w.team_id,
        "bot_profile": {"id": w.bot_id, "app_id": w.app_id, "name": w.bot.name, "deleted": False},
        **content,
    }


def auth_test(state: SlackState, args: Args) -> dict[str, Any]:
    w = state.workspace
    return {
        "url": f"https://{w.domain}.slack.com/",
        "team": w.team_name,
        "user": w.bot.name,
        "team_id": w.team_id,
        "user_id": w.bot.id,
        "bot_id": w.bot_id,
        "is_enterprise_install": False,
    }


def chat_post_message(state: SlackState, args: Args) -> dict[str, Any]:
    channel = state.channel(args.get("channel"))
    message = _bot_message(state, _content(args))
    if _flag(args.get("reply_broadcast")):
        message["subtype"] = "thread_broadcast"
    posted = state.post(channel, message, args.get("thread_ts") or None)
    return {"channel": channel.id, "ts": posted["ts"], "message": posted}


def chat_update(state: SlackState, args: Args) -> dict[str, Any]:
    channel = state.channel(args.get("channel"))
    message = state.find(channel.id, _need(args, "ts", "message_not_found"))
    if message.get("user") != state.workspace.bot.id:
        raise SlackError("cant_update_message")
    message.update(_content(args))  # blocks/attachments left out are kept, [] removes them
    for key in ("blocks", "attachments"):
        if message.get(key) == []:
            del message[key]
    message["edited"] = {"user": state.workspace.bot.id, "ts": state.next_ts()}
    return {
        "channel": channel.id,
        "ts": message["ts"],
        "text": message["text"],
        "message": {k: v for k, v in message.items() if k != "ts"},
    }


def chat_delete(state: SlackState, args: Args) -> dict[str, Any]:
    channel = state.channel(args.get("channel"))
    message = state.find(channel.id, _need(args, "ts", "message_not_found"))
    if message.get("user") != state.workspace.bot.id:
        raise SlackError("cant_delete_message")
    state.remove(channel.id, message["ts"])
    return {"channel": channel.id, "ts": message["ts"]}


def chat_post_ephemeral(state: SlackState, args: Args) -> dict[str, Any]:
    channel = state.channel(args.get("channel"))
    user = state.workspace.user(_need(args, "user", "user_not_in_channel"))
    if user is None or not channel.has_member(user.id):
        raise SlackError("user_not_in_channel")
    if channel.is_im and channel.im_user != user.id:
        raise SlackError("user_not_in_channel")
    content = _content(args)
    ts = state.next_ts()
    thread_ts = args.get("thread_ts")
    state.ephemeral.append(
        {
            "channel": channel.id,
            "user": user.id,
            "thread_ts": thread_ts,
            "message_ts": ts,
            **content,
        }
    )
    return {"message_ts": ts}


def _reaction_target(state: SlackState, args: Args) -> tuple[Message, str, str]:
    channel = state.channel(args.get("channel"))
    message = state.find(channel.id, _need(args, "timestamp", "message_not_found"))
    name = str(_need(args, "name", "invalid_name")).strip(":")
    return message, name, state.workspace.bot.id


def reactions_add(state: SlackState, args: Args) -> dict[str, Any]:
    message, name, me = _reaction_target(state, args)
    reactions: list[dict[str, Any]] = message.setdefault("reactions", [])
    reaction = next((r for r in reactions if r["name"] == name), None)
    if reaction is None:
        reactions.append({"name": name, "users": [me], "count": 1})
    elif me in reaction["users"]:
        raise SlackError("already_reacted")
    else:
        reaction["users"].append(me)
        reaction["count"] += 1
    return {}


def reactions_remove(state: SlackState, args: Args) -> dict[str, Any]:
    message, name, me = _reaction_target(state, args)
    reactions: list[dict[str, Any]] = message.get("reactions", [])
    reaction = next((r for r in reactions if r["name"] == name and me in r["users"]), None)
    if reaction is None:
        raise SlackError("no_reaction")
    reaction["users"].remove(me)
    reaction["count"] -= 1
    if not reaction["users"]:
        reactions.remove(reaction)
    if not reactions:
        message.pop("reactions", None)
    return {}


def conversations_replies(state: SlackState, args: Args) -> dict[str, Any]:
    channel = state.channel(args.get("channel"))
    thread = state.thread(channel.id, _need(args, "ts", "thread_not_found"))
    start = int(args.get("cursor") or 0)
    limit = int(args.get("limit") or 1000)
    page = thread[start : start + limit]
    more = start + limit < len(thread)
    return {
        "messages": page,
        "has_more": more,
        "response_metadata": {"next_cursor": str(start + limit) if more else ""},
    }


def conversations_info(state: SlackState, args: Args) -> dict[str, Any]:
    return {"channel": state.channel(args.get("channel")).info()}


def users_info(state: SlackState, args: Args) -> dict[str, Any]:
    user = state.workspace.user(_need(args, "user", "user_not_found"))
    if user is None:
        raise SlackError("user_not_found")
    return {"user": user.info(state.workspace.team_id)}


def usergroups_list(state: SlackState, args: Args) -> dict[str, Any]:
    include_users = _flag(args.get("include_users"))
    w = state.workspace
    return {"usergroups": [g.info(w.team_id, include_users=include_users) for g in w.usergroups]}


def usergroups_users_list(state: SlackState, args: Args) -> dict[str, Any]:
    group_id = _need(args, "usergroup", "no_such_subteam")
    group = next((g for g in state.workspace.usergroups if g.id == group_id), None)
    if group is None:
        raise SlackError("no_such_subteam")
    return {"users": list(group.users)}


def _view(
    state: SlackState, args: Args, *, kind: str, view_id: str | None = None
) -> dict[str, Any]:
    view = _need(args, "view")
    if not isinstance(view, dict) or view.get("type") != kind:
        raise SlackError("invalid_arguments")
    w = state.workspace
    view_id = view_id or state.new_id("V")
    stored = {
        "id": view_id,
        "team_id": w.team_id,
        "app_id": w.app_id,
        "bot_id": w.bot_id,
        "blocks": [],
        "private_metadata": "",
        "callback_id": "",
        "external_id": "",
        "state": {"values": {}},
        "hash": state.next_ts(),
        "previous_view_id": None,
        "root_view_id": view_id,
        **view,
    }
    state.views[view_id] = stored
    return {"view": stored}


def views_open(state: SlackState, args: Args) -> dict[str, Any]:
    _need(args, "trigger_id", "invalid_trigger_id")
    return _view(state, args, kind="modal")


def views_update(state: SlackState, args: Args) -> dict[str, Any]:
    view_id = args.get("view_id")
    if not view_id and args.get("external_id"):
        found = [v for v in state.views.values() if v.get("external_id") == args["external_id"]]
        view_id = found[0]["id"] if found else None
    if not view_id or view_id not in state.views:
        raise SlackError("not_found")
    if args.get("hash") and args["hash"] != state.views[view_id]["hash"]:
        raise SlackError("hash_conflict")
    return _view(state, args, kind=state.views[view_id]["type"], view_id=view_id)


def views_publish(state: SlackState, args: Args) -> dict[str, Any]:
    user = state.workspace.user(_need(args, "user_id", "user_not_found"))
    if user is None:
        raise SlackError("user_not_found")
    return _view(state, args, kind="home")


def files_get_upload_url_external(state: SlackState, args: Args) -> dict[str, Any]:
    filename = _need(args, "filename")
    try:
        length = int(_need(args, "length"))
    except ValueError as e:
        raise SlackError("invalid_arguments") from e
    file_id = state.new_id("F")
    state.uploads[file_id] = Upload(
        id=file_id,
        filename=filename,
        length=length,
        alt_txt=args.get("alt_txt"),
        snippet_type=args.get("snippet_type"),
        created=int(state.clock()),
    )
    # The server turns this path into a URL on itself (like files.slack.com/upload/v1/…).
    return {"upload_url": f"/_lab/upload/{file_id}", "file_id": file_id}


def file_object(state: SlackState, upload: Upload) -> dict[str, Any]:
    """A ``file`` object as files.completeUploadExternal and files.info return it."""
    w = state.workspace
    ext = upload.filename.rsplit(".", 1)[-1].lower() if "." in upload.filename else "binary"
    base = f"https://files.slack.com/files-pri/{w.team_id}-{upload.id}"
    return {
        "id": upload.id,
        "created": upload.created,
        "timestamp": upload.created,
        "name": upload.filename,
        "title": upload.title or upload.filename,
        "filetype": ext,
        "user": w.bot.id,
        "user_team": w.team_id,
        "size": len(upload.data or b""),
        "is_public": bool(upload.channels),
        "url_private": f"{base}/{upload.filename}",
        "url_private_download": f"{base}/download/{upload.filename}",
        "permalink": f"https://{w.domain}.slack.com/files/{w.bot.id}/{upload.id}/{upload.filename}",
        "channels": list(upload.channels),
        "alt_txt": upload.alt_txt,
    }


def files_complete_upload_external(state: SlackState, args: Args) -> dict[str, Any]:
    entries = _need(args, "files")
    if isinstance(entries, str):
        entries = json.loads(entries)
    channel_ids = [args["channel_id"]] if args.get("channel_id") else []
    channel_ids += [c for c in str(args.get("channels") or "").split(",") if c]
    channels = [state.channel(c) for c in channel_ids]
    uploads: list[Upload] = []
    for entry in entries:
        upload = state.uploads.get(entry.get("id", ""))
        if upload is None or upload.data is None or upload.completed:
            raise SlackError("file_not_found")
        uploads.append(upload)
    for upload, entry in zip(uploads, entries, strict=True):
        upload.completed = True
        upload.title = entry.get("title") or upload.filename
        upload.channels = [c.id for c in channels]
        upload.thread_ts = args.get("thread_ts")
        upload.initial_comment = args.get("initial_comment")
    files = [file_object(state, u) for u in uploads]
    for channel in channels:
        message = _bot_message(state, {"text": args.get("initial_comment") or "", "files": files})
        message["upload"] = True
        state.post(channel, message, args.get("thread_ts") or None)
    return {"files": files}


def files_info(state: SlackState, args: Args) -> dict[str, Any]:
    upload = state.uploads.get(_need(args, "file", "file_not_found"))
    if upload is None or not upload.completed:
        raise SlackError("file_not_found")
    return {"file": file_object(state, upload), "comments": [], "response_metadata": {}}


METHODS: dict[str, Method] = {
    "auth.test": auth_test,
    "chat.postMessage": chat_post_message,
    "chat.update": chat_update,
    "chat.delete": chat_delete,
    "chat.postEphemeral": chat_post_ephemeral,
    "reactions.add": reactions_add,
    "reactions.remove": reactions_remove,
    "conversations.replies": conversations_replies,
    "conversations.info": conversations_info,
    "users.info": users_info,
    "usergroups.list": usergroups_list,
    "usergroups.users.list": usergroups_users_list,
    "views.open": views_open,
    "views.update": views_update,
    "views.publish": views_publish,
    "files.getUploadURLExternal": files_get_upload_url_external,
    "files.completeUploadExternal": files_complete_upload_external,
    "files.info": files_info,
}
