"""The sender signs like Slack (checked by slack-sdk's own verifier) and sends Slack's shapes."""

import json
import time
from collections.abc import Iterator
from urllib.parse import parse_qs

import pytest
from slack_sdk.signature import SignatureVerifier

from lab import httpserver
from lab.slack import sender, server

SECRET = "lab-signing-secret"


class Receiver:
    """A stand-in for the bot's /slack/events: verifies with slack-sdk and keeps what came."""

    def __init__(self) -> None:
        self.verifier = SignatureVerifier(SECRET)
        self.http = httpserver.LabServer(self.handle, name="receiver")
        self.valid: list[bool] = []

    def handle(self, request: httpserver.Request) -> httpserver.Response:
        valid = self.verifier.is_valid_request(request.body, request.headers)
        self.valid.append(valid)
        if not valid:
            return httpserver.json_response({"error": "invalid signature"}, 401)
        if request.header("content-type") == "application/json":
            body = request.json()
            if body.get("type") == "url_verification":
                return httpserver.json_response({"challenge": body["challenge"]})
        return httpserver.text_response("")

    def last(self) -> httpserver.Request:
        return self.http.calls()[-1]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    with r.http:
        yield r


@pytest.fixture
def bot(receiver: Receiver) -> sender.SlackSender:
    return sender.SlackSender(receiver.http.url + "/slack/events", SECRET)


def test_signature_matches_slack_sdk() -> None:
    body = b'{"type":"event_callback"}'
    expected = SignatureVerifier(SECRET).generate_signature(timestamp="1732755600", body=body)
    assert sender.signature(SECRET, 1732755600, body) == expected


def test_url_verification_is_answered_with_the_challenge(
    bot: sender.SlackSender, receiver: Receiver
) -> None:
    delivery = bot.url_verification("c-123")
    assert delivery.status == 200 and delivery.json() == {"challenge": "c-123"}
    assert receiver.valid == [True]


def test_app_mention_envelope(bot: sender.SlackSender, receiver: Receiver) -> None:
    delivery = bot.app_mention("why is vllm-llama pending?", user="alice")
    assert delivery.status == 200 and receiver.valid == [True]
    request = receiver.last()
    assert request.path == "/slack/events"
    assert request.header("content-type") == "application/json"
    envelope = request.json()
    assert envelope == delivery.payload
    assert envelope["type"] == "event_callback"
    assert envelope["event_id"].startswith("Ev")
    assert envelope["team_id"] == bot.workspace.team_id
    assert envelope["api_app_id"] == bot.workspace.app_id
    assert abs(envelope["event_time"] - time.time()) < 60
    assert envelope["authorizations"][0]["user_id"] == bot.workspace.bot.id
    event = envelope["event"]
    assert event["type"] == "app_mention"
    assert event["text"] == f"<@{bot.workspace.bot.id}> why is vllm-llama pending?"
    assert event["user"] == "U0ALICE001" and event["channel"] == "C0GENAIALR"
    assert event["ts"] == event["event_ts"]
    assert "thread_ts" not in event


def test_messages_in_a_thread_and_a_dm(bot: sender.SlackSender, receiver: Receiver) -> None:
    bot.message(
        "and the other pod?", user="bob", channel="#genai-alerts", thread_ts="1732755600.000100"
    )
    event = receiver.last().json()["event"]
    assert event["type"] == "message" and event["channel_type"] == "channel"
    assert event["thread_ts"] == "1732755600.000100"
    bot.message("status?", user="alice", channel="D0ALICEDM1")
    event = receiver.last().json()["event"]
    assert event["channel_type"] == "im" and event["channel"] == "D0ALICEDM1"
    assert event["client_msg_id"]


def test_the_bots_own_message_carries_bot_id(bot: sender.SlackSender, receiver: Receiver) -> None:
    bot.message("I posted this", user="opsbot", channel="#genai-alerts")
    event = receiver.last().json()["event"]
    assert event["bot_id"] == bot.workspace.bot_id and "client_msg_id" not in event


def test_a_redelivery_carries_retry_headers(bot: sender.SlackSender, receiver: Receiver) -> None:
    envelope = bot.envelope(bot.message_event("hi", user="alice", channel="#genai-alerts"))
    bot.send_event(envelope)
    bot.send_event(envelope, retry_num=1)
    first, again = receiver.http.calls()
    assert first.header("x-slack-retry-num") == ""
    assert again.header("x-slack-retry-num") == "1"
    assert again.header("x-slack-retry-reason") == "http_timeout"
    assert first.json()["event_id"] == again.json()["event_id"]


def test_slash_command_form(bot: sender.SlackSender, receiver: Receiver) -> None:
    delivery = bot.slash_command("/opsbot", "diagnose vllm-llama", user="carol")
    assert delivery.status == 200 and receiver.valid == [True]
    request = receiver.last()
    assert request.header("content-type") == "application/x-www-form-urlencoded"
    form = {k: v[0] for k, v in parse_qs(request.body.decode(), keep_blank_values=True).items()}
    assert form["command"] == "/opsbot" and form["text"] == "diagnose vllm-llama"
    assert form["user_id"] == "U0CAROL001" and form["user_name"] == "carol"
    assert form["channel_id"] == "C0GENAIALR" and form["channel_name"] == "genai-alerts"
    assert form["team_id"] == bot.workspace.team_id and form["api_app_id"] == bot.workspace.app_id
    assert form["response_url"].startswith("https://hooks.slack.com/commands/")
    assert form["trigger_id"].count(".") == 2


def test_block_action_click_and_its_response_url(receiver: Receiver) -> None:
    with server.SlackServer() as slack:
        bot = sender.SlackSender(
            receiver.http.url + "/slack/events", SECRET, response_urls=slack.response_url
        )
        alert = slack.add_message("#genai-alerts", "KubePodPending", user="opsbot")
        delivery = bot.click(
            "approve_fix",
            "proposal-42",
            user="alice",
            channel="#genai-alerts",
            message=alert,
            block_id="fix",
        )
        assert delivery.status == 200 and receiver.valid == [True]
        form = parse_qs(receiver.last().body.decode())
        payload = json.loads(form["payload"][0])
        assert payload == delivery.payload
        assert payload["type"] == "block_actions"
        assert payload["user"]["id"] == "U0ALICE001"
        assert payload["channel"]["id"] == "C0GENAIALR"
        assert payload["message"]["ts"] == alert["ts"]
        assert payload["container"]["message_ts"] == alert["ts"]
        [action] = payload["actions"]
        assert (action["action_id"], action["value"], action["block_id"]) == (
            "approve_fix",
            "proposal-42",
            "fix",
        )

        # What the bot would do with it: replace the original message through response_url.
        reply = sender.SlackSender(payload["response_url"], SECRET).post(
            json.dumps({"replace_original": True, "text": "Approved by alice"}).encode(),
            "application/json",
            signed=False,
        )
        assert reply.json() == {"ok": True}
        assert slack.message("#genai-alerts", alert["ts"])["text"] == "Approved by alice"


def test_wrong_secret_fails_verification(receiver: Receiver) -> None:
    impostor = sender.SlackSender(receiver.http.url, "not-the-secret")
    assert impostor.app_mention("hi", user="alice").status == 401
    assert receiver.valid == [False]


def test_stale_timestamp_fails_verification(receiver: Receiver) -> None:
    late = sender.SlackSender(receiver.http.url, SECRET, clock=lambda: time.time() - 600)
    assert late.slash_command("/opsbot", user="alice").status == 401
    assert receiver.valid == [False]


def test_tampered_and_unsigned_requests_fail(bot: sender.SlackSender, receiver: Receiver) -> None:
    body = b'{"type":"event_callback"}'
    assert bot.post(body, "application/json", signature_header="v0=" + "0" * 64).status == 401
    assert bot.post(body, "application/json", signed=False).status == 401
    signed_for_other = sender.signature(SECRET, int(time.time()), b"{}")
    assert bot.post(body, "application/json", signature_header=signed_for_other).status == 401
    assert receiver.valid == [False, False, False]


def test_only_http_urls() -> None:
    with pytest.raises(ValueError, match="http"):
        sender.SlackSender("file:///etc/passwd", SECRET)
