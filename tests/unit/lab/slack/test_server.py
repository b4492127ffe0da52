"""The Slack fake through the real slack-sdk ``WebClient``: if the SDK is happy, the bot will be."""

import json
import urllib.request
from collections.abc import Iterator
from urllib.parse import urlencode

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler

from lab.slack import ratelimit, server


@pytest.fixture
def slack() -> Iterator[server.SlackServer]:
    with server.SlackServer() as fake:
        yield fake


@pytest.fixture
def client(slack: server.SlackServer) -> WebClient:
    return WebClient(token=slack.token, base_url=slack.api_url, timeout=10)


def _error(excinfo: pytest.ExceptionInfo[SlackApiError]) -> str:
    return str(excinfo.value.response["error"])


def test_auth_test_names_the_bot(client: WebClient, slack: server.SlackServer) -> None:
    answer = client.auth_test()
    assert answer["user_id"] == slack.workspace.bot.id
    assert answer["bot_id"] == slack.workspace.bot_id
    assert answer["team_id"] == slack.workspace.team_id


def test_post_update_and_replies_show_the_final_state(
    client: WebClient, slack: server.SlackServer
) -> None:
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*firing*"}}]
    posted = client.chat_postMessage(channel="#genai-alerts", text="firing", blocks=blocks)
    channel, ts = posted["channel"], posted["ts"]
    assert channel.startswith("C")
    assert ts.count(".") == 1 and len(ts.split(".")[1]) == 6
    assert posted["message"]["text"] == "firing"
    reply = client.chat_postMessage(channel=channel, text="diagnosis", thread_ts=ts)
    assert reply["message"]["thread_ts"] == ts

    updated = client.chat_update(channel=channel, ts=ts, text="resolved")
    assert updated["ts"] == ts and updated["text"] == "resolved"

    thread = client.conversations_replies(channel=channel, ts=ts)["messages"]
    assert [m["text"] for m in thread] == ["resolved", "diagnosis"]
    assert thread[0]["reply_count"] == 1
    assert thread[0]["blocks"] == blocks  # chat.update keeps blocks it was not given
    assert "edited" in thread[0]
    assert [m["text"] for m in slack.messages("genai-alerts")] == ["resolved", "diagnosis"]
    assert slack.messages(channel, thread_ts=reply["ts"])[0]["ts"] == ts


def test_a_reply_to_a_reply_lands_in_the_parent_thread(client: WebClient) -> None:
    root = client.chat_postMessage(channel="#genai-alerts", text="root")
    first = client.chat_postMessage(channel=root["channel"], text="1", thread_ts=root["ts"])
    client.chat_postMessage(channel=root["channel"], text="2", thread_ts=first["ts"])
    thread = client.conversations_replies(channel=root["channel"], ts=root["ts"])["messages"]
    assert [m["text"] for m in thread] == ["root", "1", "2"]


def test_unknown_channel_thread_and_message_are_errors(client: WebClient) -> None:
    with pytest.raises(SlackApiError) as excinfo:
        client.chat_postMessage(channel="#nope", text="x")
    assert _error(excinfo) == "channel_not_found"
    with pytest.raises(SlackApiError) as excinfo:
        client.chat_postMessage(channel="#genai-alerts", text="x", thread_ts="1.000001")
    assert _error(excinfo) == "thread_not_found"
    with pytest.raises(SlackApiError) as excinfo:
        client.chat_update(channel="#genai-alerts", ts="1.000001", text="x")
    assert _error(excinfo) == "message_not_found"
    with pytest.raises(SlackApiError) as excinfo:
        client.api_call("chat.postMessage", json={"channel": "#genai-alerts"})
    assert _error(excinfo) == "no_text"


def test_the_bot_cannot_edit_a_persons_message(
    client: WebClient, slack: server.SlackServer
) -> None:
    said = slack.add_message("#genai-alerts", "is vLLM down?", user="bob")
    with pytest.raises(SlackApiError) as excinfo:
        client.chat_update(channel="#genai-alerts", ts=said["ts"], text="x")
    assert _error(excinfo) == "cant_update_message"


def test_delete_removes_the_message(client: WebClient, slack: server.SlackServer) -> None:
    posted = client.chat_postMessage(channel="#genai-warnings", text="oops")
    client.chat_delete(channel=posted["channel"], ts=posted["ts"])
    assert slack.messages("#genai-warnings") == []


def test_posting_to_a_user_id_opens_a_dm(client: WebClient, slack: server.SlackServer) -> None:
    posted = client.chat_postMessage(channel="U0BOB00001", text="hello bob")
    assert posted["channel"].startswith("D")
    info = client.conversations_info(channel=posted["channel"])["channel"]
    assert info["is_im"] and info["user"] == "U0BOB00001"
    alice_dm = client.chat_postMessage(channel="U0ALICE001", text="hi")
    assert alice_dm["channel"] == "D0ALICEDM1"  # the configured DM, not a new one


def test_ephemeral_is_kept_apart_from_the_channel(
    client: WebClient, slack: server.SlackServer
) -> None:
    answer = client.chat_postEphemeral(channel="#genai-alerts", user="U0ALICE001", text="only you")
    assert answer["message_ts"]
    assert slack.messages("#genai-alerts") == []
    [posted] = slack.ephemeral("U0ALICE001")
    assert posted["text"] == "only you" and posted["channel"] == "C0GENAIALR"
    with pytest.raises(SlackApiError) as excinfo:
        client.chat_postEphemeral(channel="D0ALICEDM1", user="U0BOB00001", text="x")
    assert _error(excinfo) == "user_not_in_channel"


def test_reactions_add_and_remove(client: WebClient, slack: server.SlackServer) -> None:
    posted = client.chat_postMessage(channel="#genai-alerts", text="alert")
    channel, ts = posted["channel"], posted["ts"]
    client.reactions_add(channel=channel, timestamp=ts, name="eyes")
    assert slack.message(channel, ts)["reactions"] == [
        {"name": "eyes", "users": [slack.workspace.bot.id], "count": 1}
    ]
    with pytest.raises(SlackApiError) as excinfo:
        client.reactions_add(channel=channel, timestamp=ts, name="eyes")
    assert _error(excinfo) == "already_reacted"
    client.reactions_remove(channel=channel, timestamp=ts, name="eyes")
    assert "reactions" not in slack.message(channel, ts)
    with pytest.raises(SlackApiError) as excinfo:
        client.reactions_remove(channel=channel, timestamp=ts, name="eyes")
    assert _error(excinfo) == "no_reaction"


def test_files_upload_v2_end_to_end(client: WebClient, slack: server.SlackServer) -> None:
    root = client.chat_postMessage(channel="#genai-alerts", text="daily report")
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256))
    answer = client.files_upload_v2(
        channel=root["channel"],
        thread_ts=root["ts"],
        content=png,
        filename="gpu-util.png",
        title="GPU utilisation",
        initial_comment="Chart for the last 24 h",
    )
    assert answer["file"]["id"].startswith("F")
    assert answer["file"]["title"] == "GPU utilisation"
    [upload] = slack.uploads()
    assert upload.data == png and upload.length == len(png)
    assert upload.channels == [root["channel"]]
    assert upload.thread_ts == root["ts"] and upload.initial_comment == "Chart for the last 24 h"
    thread = slack.messages(root["channel"], thread_ts=root["ts"])
    assert thread[-1]["text"] == "Chart for the last 24 h"
    assert thread[-1]["files"][0]["name"] == "gpu-util.png"
    assert [c.method for c in slack.calls()][-2:] == [
        "files.getUploadURLExternal",
        "files.completeUploadExternal",
    ]
    assert slack.http.calls("POST", path=r"^/_lab/upload/F")


def test_completing_a_file_never_uploaded_fails(client: WebClient) -> None:
    url = client.files_getUploadURLExternal(filename="a.txt", length=3)
    with pytest.raises(SlackApiError) as excinfo:
        client.files_completeUploadExternal(files=[{"id": url["file_id"], "title": "a"}])
    assert _error(excinfo) == "file_not_found"


def test_usergroups_and_users(client: WebClient, slack: server.SlackServer) -> None:
    group = slack.workspace.usergroup("sre-approvers")
    assert group is not None
    assert client.usergroups_users_list(usergroup=group.id)["users"] == ["U0ALICE001"]
    listed = client.usergroups_list(include_users=True)["usergroups"]
    assert listed[0]["handle"] == "sre-approvers" and listed[0]["users"] == ["U0ALICE001"]
    with pytest.raises(SlackApiError) as excinfo:
        client.usergroups_users_list(usergroup="S0NOPE0000")
    assert _error(excinfo) == "no_such_subteam"
    assert client.users_info(user="U0BOB00001")["user"]["name"] == "bob"
    with pytest.raises(SlackApiError) as excinfo:
        client.users_info(user="U0NOBODY00")
    assert _error(excinfo) == "user_not_found"
    assert client.conversations_info(channel="C0GENAICRT")["channel"]["name"] == "genai-critical"


def test_views_open_update_publish(client: WebClient, slack: server.SlackServer) -> None:
    modal = {"type": "modal", "title": {"type": "plain_text", "text": "Silence"}, "blocks": []}
    opened = client.views_open(trigger_id="1.2.abc", view=modal)["view"]
    assert opened["id"].startswith("V")
    changed = {**modal, "title": {"type": "plain_text", "text": "Silence 2h"}}
    updated = client.views_update(view_id=opened["id"], view=changed, hash=opened["hash"])
    assert updated["view"]["title"]["text"] == "Silence 2h"
    with pytest.raises(SlackApiError) as excinfo:
        client.views_update(view_id=opened["id"], view=changed, hash=opened["hash"])
    assert _error(excinfo) == "hash_conflict"
    home = {"type": "home", "blocks": []}
    assert client.views_publish(user_id="U0ALICE001", view=home)["view"]["type"] == "home"


def test_bad_or_missing_token(slack: server.SlackServer) -> None:
    with pytest.raises(SlackApiError) as excinfo:
        WebClient(token="xoxb-wrong", base_url=slack.api_url).auth_test()
    assert _error(excinfo) == "invalid_auth"
    with pytest.raises(SlackApiError) as excinfo:
        WebClient(base_url=slack.api_url).auth_test()
    assert _error(excinfo) == "not_authed"
    with pytest.raises(SlackApiError) as excinfo:
        WebClient(token=slack.token, base_url=slack.api_url).api_call("chat.nonsense")
    assert _error(excinfo) == "unknown_method"
    assert excinfo.value.response.status_code == 404


def test_form_body_with_token_argument(slack: server.SlackServer) -> None:
    """Slack also takes the token as a POST parameter, and arguments form-encoded."""
    body = urlencode({"token": slack.token, "channel": "genai-alerts", "text": "true"}).encode()
    request = urllib.request.Request(slack.api_url + "chat.postMessage", data=body, method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        answer = json.loads(response.read())
    assert answer["ok"] and answer["message"]["text"] == "true"


def test_calls_are_served_as_json(client: WebClient, slack: server.SlackServer) -> None:
    client.chat_postMessage(channel="#genai-alerts", text="one")
    with pytest.raises(SlackApiError):
        client.chat_postMessage(channel="#nope", text="two")
    with urllib.request.urlopen(slack.url + "/_lab/calls?method=chat.postMessage", timeout=10) as r:
        calls = json.loads(r.read())
    assert [(c["args"]["channel"], c["ok"], c["error"]) for c in calls] == [
        ("#genai-alerts", True, None),
        ("#nope", False, "channel_not_found"),
    ]
    assert all(isinstance(c["at"], float) and c["method"] == "chat.postMessage" for c in calls)
    assert "token" not in calls[0]["args"]
    with urllib.request.urlopen(slack.url + "/_lab/messages?channel=genai-alerts", timeout=10) as r:
        assert [m["text"] for m in json.loads(r.read())] == ["one"]


def test_response_url_replaces_posts_or_whispers(
    slack: server.SlackServer, client: WebClient
) -> None:
    posted = client.chat_postMessage(channel="#genai-alerts", text="Approve?")
    url = slack.response_url(posted["channel"], posted["ts"], "U0ALICE001")

    def post(body: dict[str, object]) -> dict[str, object]:
        data = json.dumps(body).encode()
        request = urllib.request.Request(url, data=data, method="POST")
        request.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(request, timeout=10) as response:
            return dict(json.loads(response.read()))

    assert post({"replace_original": True, "text": "Approved by alice"}) == {"ok": True}
    assert slack.message(posted["channel"], posted["ts"])["text"] == "Approved by alice"
    post({"response_type": "in_channel", "text": "Applying", "thread_ts": posted["ts"]})
    assert slack.messages("#genai-alerts", thread_ts=posted["ts"])[-1]["text"] == "Applying"
    post({"text": "just for you"})
    assert slack.ephemeral("U0ALICE001")[-1]["text"] == "just for you"
    assert len(slack.responses()) == 3


def test_post_message_is_limited_per_channel_and_the_sdk_recovers() -> None:
    limits = ratelimit.RateLimits(post_message=ratelimit.Limit(burst=1, per_second=1.0))
    with server.SlackServer(limits=limits) as slack:
        plain = WebClient(token=slack.token, base_url=slack.api_url, timeout=10)
        plain.chat_postMessage(channel="#genai-alerts", text="first")
        with pytest.raises(SlackApiError) as excinfo:
            plain.chat_postMessage(channel="#genai-alerts", text="second")
        assert excinfo.value.response.status_code == 429
        assert excinfo.value.response.headers["Retry-After"] == "1"
        assert _error(excinfo) == "ratelimited"
        plain.chat_postMessage(channel="#genai-critical", text="other channel")

        patient = WebClient(token=slack.token, base_url=slack.api_url, timeout=10)
        patient.retry_handlers.append(RateLimitErrorRetryHandler(max_retry_count=2))
        # slack-sdk sleeps Retry-After (1 s) plus up to 1 s of jitter, then retries.
        assert patient.chat_postMessage(channel="#genai-alerts", text="second again")["ok"]

        statuses = [
            c.status
            for c in slack.calls("chat.postMessage")
            if c.args["channel"] == "#genai-alerts"
        ]
        assert statuses[:2] == [200, 429]
        assert statuses[-1] == 200 and 429 in statuses[2:]
        assert [m["text"] for m in slack.messages("#genai-alerts")] == ["first", "second again"]


def test_a_tier_limit_applies_per_method() -> None:
    slow = ratelimit.Limit(burst=1, per_second=0.01)
    with server.SlackServer(limits=ratelimit.RateLimits(methods={"users.info": slow})) as slack:
        client = WebClient(token=slack.token, base_url=slack.api_url, timeout=10)
        client.users_info(user="U0BOB00001")
        with pytest.raises(SlackApiError) as excinfo:
            client.users_info(user="U0ALICE001")
        assert excinfo.value.response.headers["Retry-After"] == "100"
        assert client.auth_test()["ok"]


def test_token_bucket_refills_at_its_rate() -> None:
    buckets = ratelimit.Buckets()
    limit = ratelimit.Limit(burst=2, per_second=0.5)
    assert [buckets.take(("k",), limit, now=100.0) for _ in range(3)] == [0, 0, 2]
    assert buckets.take(("k",), limit, now=101.0) == 1
    assert buckets.take(("k",), limit, now=102.0) == 0
    assert buckets.take(("other",), limit, now=102.0) == 0
