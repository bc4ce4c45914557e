"""What an answer cost, read from each backend's end of the answer: absent, never zero, where
Lingma did not say (pure)."""

from __future__ import annotations

from acp.schema import PromptResponse

from lingma_mcp.acp.usage import usage_from
from lingma_mcp.events import Usage
from lingma_mcp.lingma.streams import _finish
from lingma_mcp.lingma.usage import usage_from_finish

# The prompt result of qoderclicn 1.1.52 started with QODERCN_EXPOSE_TOKEN_USAGE=1
# (observed offline, docs/cli-observed.md).
COUNTED = {
    "stopReason": "end_turn",
    "userMessageId": "u-1",
    "usage": {"inputTokens": 21, "outputTokens": 12, "totalTokens": 33},
    "_meta": {
        "quota": {
            "token_count": {"input_tokens": 21, "output_tokens": 12},
            "model_usage": [{"model": "auto", "token_count": {"input_tokens": 21}}],
        }
    },
}


def cli_usage(raw: dict) -> Usage | None:
    reply = PromptResponse.model_validate(raw)
    return usage_from(reply.usage, reply.field_meta)


def test_the_cli_prompt_result_gives_tokens_and_the_model_that_served():
    assert cli_usage(COUNTED) == Usage(21, 12, 33, model="auto")


def test_zero_counts_are_not_counted_not_free():
    # Without QODERCN_EXPOSE_TOKEN_USAGE the CLI sends zeros; the model is still known.
    zeros = {**COUNTED, "usage": {"inputTokens": 0, "outputTokens": 0, "totalTokens": 0}}
    assert cli_usage(zeros) == Usage(model="auto")


def test_a_result_without_usage_has_none():
    assert cli_usage({"stopReason": "end_turn"}) is None


def test_several_models_are_named_in_the_cli_order_and_credits_are_read_where_sent():
    meta = {
        "quota": {
            "model_usage": [{"model": "auto"}, {"model": "qwen3-coder"}, {"model": "auto"}],
            "total_credits": 0.25,
        }
    }
    found = cli_usage({"stopReason": "end_turn", "_meta": meta})
    assert found == Usage(model="auto, qwen3-coder", credits=0.25)


def test_a_chat_finish_with_a_usage_object_gives_it_and_one_without_gives_none():
    carries = {
        "requestId": "r",
        "sessionId": "s",
        "reason": "success",
        "statusCode": 200,
        "extra": {"usage": {"promptTokens": 5, "completionTokens": 7, "totalTokens": 12}},
    }
    assert usage_from_finish(carries) == Usage(5, 7, 12)
    assert _finish(carries).usage == Usage(5, 7, 12)
    bare = {"requestId": "r", "sessionId": "s", "reason": "success", "statusCode": 200}
    assert usage_from_finish(bare) is None
    # A usage that holds no count, model or credits is no usage at all.
    assert usage_from_finish({**bare, "usage": {"note": "n/a", "inputTokens": -1}}) is None
