"""LLM coordinator benchmark against the fake Groq server: what the LLM path adds to a signal, how
fast a timeout falls back to the rules, and how many LLM signals a day the default budget allows.

    .venv/bin/python benchmarks/llm_latency.py [--runs 40]

Two desks over the shipped replay data (BTC/USDT and ETH/USDT at `data.default_at`): one with
`coordinator.kind: rules`, one with `llm` pointed at the fake server (answer cache off, so every
signal asks; the fake answers at once, so the figure is our own overhead: prompt, the groq SDK's
HTTP round trip on 127.0.0.1, parsing, bounds and the number check, not a model's thinking).
Signals alternate between the two desks so load on the machine hits both alike. The fallback is
timed with the fake never answering, at the default `llm.call_timeout_s` (8 s) and at 1 s.
Signals a day: each real prompt's token estimate (characters / 4 + the 700-token output cap)
against the default budget (Groq's free tier for openai/gpt-oss-120b), 75 % of it for cycles.
"""

from __future__ import annotations

import argparse
import asyncio
import time

import structlog

from intel.config import Config, CoordinatorConfig, LlmBudgetConfig, LlmConfig, Secrets
from intel.desk import SignalDesk, build_desk
from intel.sources.fakes.groq import FakeAnswer, FakeGroq, proposal_json

SYMBOLS = ("BTC/USDT", "ETH/USDT")


def desk_for(kind: str, llm: LlmConfig) -> SignalDesk:
    config = Config().model_copy(
        update={"coordinator": CoordinatorConfig(kind=kind), "llm": llm}  # type: ignore[arg-type]
    )
    return build_desk(config, secrets=Secrets(groq_api_key="gsk_bench"))


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


async def timed(desk: SignalDesk, symbol: str) -> tuple[float, str]:
    started = time.perf_counter()
    result = await desk.signal(symbol)
    return (time.perf_counter() - started) * 1000, result.signal.coordinator


async def added_latency(fake: FakeGroq, runs: int) -> None:
    # Minute limits raised (and the fake's headers with them): the loop asks far faster than
    # a real deployment, and a budget fallback would time the rules twice.
    unlimited = LlmBudgetConfig(requests_per_minute=10**6, tokens_per_minute=10**9)
    fake.limits.update(requests=10**6, tokens=10**9)
    llm = LlmConfig(base_url=fake.base_url, cache_ttl_s=0, budget=unlimited)
    rules_desk, llm_desk = desk_for("rules", llm), desk_for("llm", llm)
    times: dict[str, list[float]] = {"rules": [], "llm": []}
    async with rules_desk, llm_desk:
        for symbol in SYMBOLS:  # warm the replay caches and the HTTP connection
            await timed(rules_desk, symbol)
            await timed(llm_desk, symbol)
        for run in range(runs):
            symbol = SYMBOLS[run % len(SYMBOLS)]
            for name, desk in (("rules", rules_desk), ("llm", llm_desk)):
                elapsed_ms, made_by = await timed(desk, symbol)
                assert made_by == name, f"{name} desk answered as {made_by}"
                times[name].append(elapsed_ms)
    print(f"signal latency over {runs} signals each (ms):")
    for name, values in times.items():
        print(
            f"  {name:5}  p50 {percentile(values, 0.5):7.1f}   p95 {percentile(values, 0.95):7.1f}"
        )
    for share, label in ((0.5, "p50"), (0.95, "p95")):
        added = percentile(times["llm"], share) - percentile(times["rules"], share)
        print(f"  added by the LLM path, {label}: {added:.1f} ms")


async def fallback_time(fake: FakeGroq, timeout_s: float) -> None:
    llm = LlmConfig(base_url=fake.base_url, cache_ttl_s=0, call_timeout_s=timeout_s)
    desk = desk_for("llm", llm)
    async with desk:
        await timed(desk, "BTC/USDT")  # warm: replay data loaded, a connection open
        fake.script.extend([FakeAnswer(proposal_json(), delay_s=60.0)] * 2)
        elapsed_ms, made_by = await timed(desk, "BTC/USDT")
        notes = (await desk.signal("BTC/USDT")).signal.notes
        fake.script.clear()
    assert made_by == "rules", made_by
    print(f"fallback on a timeout (llm.call_timeout_s {timeout_s:g}): {elapsed_ms / 1000:.2f} s")
    print(f"  note: {notes[-1]}")


def signals_per_day(prompt_chars: list[int]) -> None:
    budget = LlmConfig().budget
    output = LlmConfig().max_output_tokens
    tokens = max(round(chars / budget.chars_per_token) + output for chars in prompt_chars)
    scheduled = 1 - budget.on_demand_share
    per_day = min(budget.requests_per_day, budget.tokens_per_day // tokens)
    per_minute = min(budget.requests_per_minute, budget.tokens_per_minute // tokens)
    print(
        f"budget: prompts of {min(prompt_chars):,}-{max(prompt_chars):,} characters, "
        f"estimated {tokens:,} tokens a request with the output cap"
    )
    print(
        f"  default budget allows {per_day} LLM signals a day ({int(per_day * scheduled)} for "
        f"cycles, the rest kept for /signal), at most {per_minute} a minute"
    )
    bound = (
        "tokens per day"
        if budget.tokens_per_day // tokens < budget.requests_per_day
        else ("requests per day")
    )
    print(f"  the binding limit: {bound}")
    symbols_hourly = int(per_day * scheduled) // 24
    print(f"  hourly cycles can cover {symbols_hourly} symbols with the LLM")


async def main(runs: int) -> None:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    responder_answer = FakeAnswer(proposal_json(confidence=0))
    async with FakeGroq(lambda body: responder_answer) as fake:
        await added_latency(fake, runs)
        prompt_chars = [
            sum(len(m["content"]) for m in request["messages"]) for request in fake.requests
        ]
        await fallback_time(fake, 1.0)
        await fallback_time(fake, LlmConfig().call_timeout_s)
    signals_per_day(prompt_chars)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=40)
    asyncio.run(main(parser.parse_args().runs))
