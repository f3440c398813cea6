#!/usr/bin/env python3
"""Drive an OpenLedger dev node's OpenAI-compatible API with the official `openai` Python client, unchanged.

Run by hand, not in CI (the `openai` package is not a dependency of the product):
    python3 -m venv /tmp/oai && /tmp/oai/bin/pip install openai
    openledger up --instant &          # or: cargo run --release -- up --instant
                                       # the dev node serves its base model as m1 and writes an API key
                                       # to <data-dir>/dev-api-key (default data dir ~/.openledger/dev)
    /tmp/oai/bin/python scripts/interop/openai_check.py                       # http://127.0.0.1:8080/v1
    /tmp/oai/bin/python scripts/interop/openai_check.py --base-url http://127.0.0.1:28080/v1 \
        --key-file /tmp/oai-node/dev-api-key

Every check prints `ok <what>` or `FAIL <what>: <why>` (with the request, the raw response and the client's
error where there is one); the exit status is the number of failures (0 = all passed).

Calls, as an application written against OpenAI would make them:
 1. client.models.list()                                   expects m1 among the models
 2. client.chat.completions.create(model="m1", messages=[...], max_tokens=16)
                                                           usage, choices[0].message.content, and the extra
                                                           `receipt` field (model_extra / to_dict())
 3. the same with stream=True, stream_options={"include_usage": True}
                                                           deltas joined, usage (and receipt) on the final chunk
 4. client.completions.create(model="m1", prompt="...")    text and usage
 5. errors: model "m999" -> openai.NotFoundError; a bad key -> openai.AuthenticationError;
    temperature=5 -> openai.BadRequestError
"""
import argparse
import json
import os
import sys
import traceback

import openai
from openai import OpenAI

failures = []


def report(what, ok, why=""):
    if ok:
        print(f"ok   {what}")
    else:
        failures.append(what)
        print(f"FAIL {what}: {why}")


def raw_of(e):
    """The HTTP status and body of a failed call, when the client kept them."""
    resp = getattr(e, "response", None)
    if resp is None:
        return ""
    try:
        body = resp.text
    except Exception:  # a stream already consumed
        body = "<unreadable>"
    return f" [HTTP {resp.status_code} {body[:600]!r}]"


def check(what, fn):
    """Run one check: fn returns (ok, why) or raises."""
    try:
        ok, why = fn()
        report(what, ok, why)
    except Exception as e:  # the client refused the server's response, or a transport error
        report(what, False, f"{type(e).__name__}: {e}{raw_of(e)}\n{traceback.format_exc(limit=3)}")


def main():
    ap = argparse.ArgumentParser(description="The official openai client against an OpenLedger dev node.")
    ap.add_argument("--base-url", default=os.environ.get("OPENLEDGER_API", "http://127.0.0.1:8080/v1"))
    ap.add_argument("--key", default=os.environ.get("OPENLEDGER_API_KEY"), help="API key (default: --key-file)")
    ap.add_argument(
        "--key-file",
        default=os.path.expanduser("~/.openledger/dev/dev-api-key"),
        help="file holding the dev node's API key (<data-dir>/dev-api-key)",
    )
    ap.add_argument("--model", default="m1")
    args = ap.parse_args()
    key = args.key
    if not key:
        try:
            with open(args.key_file, encoding="utf-8") as f:
                key = f.read().strip()
        except OSError as e:
            sys.exit(f"openai_check: no API key: pass --key or --key-file ({e})")

    print(f"openai {openai.__version__} against {args.base_url}, model {args.model}")
    client = OpenAI(base_url=args.base_url, api_key=key, max_retries=0, timeout=120)
    model = args.model
    messages = [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Say hello to OpenLedger."},
    ]

    # 1. Models.
    def models():
        page = client.models.list()
        ids = [m.id for m in page.data]
        m = next((m for m in page.data if m.id == model), None)
        if m is None:
            return False, f"{model} not in {ids}"
        if m.object != "model":
            return False, f"object {m.object!r}"
        print(f"     models: {ids}; {model}: owned_by {m.owned_by}, created {m.created}, extra {m.model_extra}")
        return True, ""

    check("models.list() lists m1", models)

    # 2. Chat, not streamed.
    def chat():
        r = client.chat.completions.create(model=model, messages=messages, max_tokens=16)
        c = r.choices[0]
        content = c.message.content
        u = r.usage
        receipt = (r.model_extra or {}).get("receipt")
        receipt_d = r.to_dict().get("receipt")
        print(f"     chat: id {r.id}, finish {c.finish_reason}, content {content!r}")
        print(f"     usage {u.prompt_tokens}+{u.completion_tokens}={u.total_tokens}; receipt {json.dumps(receipt)[:300]}")
        problems = []
        if r.object != "chat.completion":
            problems.append(f"object {r.object!r}")
        if c.message.role != "assistant":
            problems.append(f"role {c.message.role!r}")
        if not isinstance(content, str):
            problems.append(f"content {content!r}")
        if u is None or u.completion_tokens < 1 or u.completion_tokens > 16:
            problems.append(f"usage {u}")
        elif u.total_tokens != u.prompt_tokens + u.completion_tokens:
            problems.append(f"total_tokens {u.total_tokens} != {u.prompt_tokens} + {u.completion_tokens}")
        if c.finish_reason not in ("stop", "length"):
            problems.append(f"finish_reason {c.finish_reason!r}")
        if not isinstance(receipt, dict) or receipt != receipt_d:
            problems.append(f"receipt via model_extra {receipt!r}, via to_dict() {receipt_d!r}")
        return not problems, "; ".join(problems)

    check("chat.completions.create(max_tokens=16): content, usage, receipt", chat)

    # 3. Chat, streamed, with usage on the final chunk.
    def chat_stream():
        stream = client.chat.completions.create(
            model=model, messages=messages, max_tokens=16, stream=True, stream_options={"include_usage": True}
        )
        parts, chunks, usage, receipt, finish, roles = [], 0, None, None, None, []
        for ch in stream:
            chunks += 1
            if ch.object != "chat.completion.chunk":
                return False, f"chunk object {ch.object!r}"
            for c in ch.choices:
                if c.delta.role:
                    roles.append(c.delta.role)
                if c.delta.content:
                    parts.append(c.delta.content)
                if c.finish_reason:
                    finish = c.finish_reason
            if ch.usage is not None:
                usage = ch.usage
                receipt = (ch.model_extra or {}).get("receipt")
        text = "".join(parts)
        print(f"     stream: {chunks} chunks, roles {roles}, finish {finish}, text {text!r}")
        print(f"     final usage {usage}; receipt {json.dumps(receipt)[:300]}")
        problems = []
        if usage is None:
            problems.append("no usage in any chunk")
        elif usage.completion_tokens < 1 or usage.completion_tokens > 16:
            problems.append(f"usage {usage}")
        if finish not in ("stop", "length"):
            problems.append(f"finish_reason {finish!r}")
        if roles[:1] != ["assistant"]:
            problems.append(f"first delta role {roles[:1]}")
        if not isinstance(receipt, dict):
            problems.append(f"no receipt on the usage chunk ({receipt!r})")
        return not problems, "; ".join(problems)

    check("chat.completions.create(stream=True, include_usage): deltas, final usage", chat_stream)

    # 4. Legacy completions.
    def completion():
        r = client.completions.create(model=model, prompt="The ledger records", max_tokens=16)
        c = r.choices[0]
        print(f"     completion: id {r.id}, finish {c.finish_reason}, text {c.text!r}, usage {r.usage}")
        problems = []
        if r.object != "text_completion":
            problems.append(f"object {r.object!r}")
        if not isinstance(c.text, str):
            problems.append(f"text {c.text!r}")
        if r.usage is None or r.usage.completion_tokens < 1:
            problems.append(f"usage {r.usage}")
        if not isinstance((r.model_extra or {}).get("receipt"), dict):
            problems.append("no receipt")
        return not problems, "; ".join(problems)

    check("completions.create(prompt=...): text, usage", completion)

    # 5. Errors, each the client's own exception type.
    def expect(exc, fn, what):
        def run():
            try:
                r = fn()
            except exc as e:
                body = e.body if isinstance(e.body, dict) else {}
                print(f"     {what}: {type(e).__name__} {e.status_code}: code {body.get('code')!r}, {e.message[:160]!r}")
                return True, ""
            except openai.APIError as e:
                return False, f"expected {exc.__name__}, got {type(e).__name__}: {e}{raw_of(e)}"
            return False, f"expected {exc.__name__}, the call succeeded: {r}"

        return run

    check(
        "model m999 -> openai.NotFoundError",
        expect(
            openai.NotFoundError,
            lambda: client.chat.completions.create(model="m999", messages=messages, max_tokens=4),
            "m999",
        ),
    )
    bad = OpenAI(base_url=args.base_url, api_key="sk-not-a-key", max_retries=0, timeout=60)
    check(
        "a bad API key -> openai.AuthenticationError",
        expect(
            openai.AuthenticationError,
            lambda: bad.chat.completions.create(model=model, messages=messages, max_tokens=4),
            "bad key",
        ),
    )
    check(
        "temperature=5 -> openai.BadRequestError",
        expect(
            openai.BadRequestError,
            lambda: client.chat.completions.create(model=model, messages=messages, max_tokens=4, temperature=5),
            "temperature 5",
        ),
    )

    print(f"\n{len(failures)} failure(s)" + (": " + "; ".join(failures) if failures else ""))
    return len(failures)


if __name__ == "__main__":
    sys.exit(main())
