"""The LLM coordinator: the rules decide first, the LLM explains within their bounds.

    rules signal ─► prompt (figures + quoted Reddit excerpts) ─► cache? ─► budget ─► Groq
                ─► JSON reply (one repair) ─► bounds (`bounds`) ─► number check (`numbercheck`)
                ─► Signal(coordinator="llm", clamps=…, model=…)

Whatever goes wrong with the LLM — no key, over budget, breaker open, late (`llm.call_timeout_s`),
an error, invalid JSON twice — the answer is the rules' signal with a note saying why; the
pipeline's outer deadline still guards this coordinator as any other.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime

import structlog
from cachetools import TTLCache

from intel.config import LlmConfig
from intel.coordinator.bounds import apply_bounds
from intel.coordinator.budget import BudgetExhaustedError, LlmBudget
from intel.coordinator.groq_client import ChatAnswer, GroqChat
from intel.coordinator.numbercheck import unmatched_figures
from intel.coordinator.prompt import Prompt, build_prompt, given_figures
from intel.coordinator.reply import CAPS, InvalidReplyError, Proposal, clean_text, parse_reply
from intel.coordinator.rules import Assessment, RulesCoordinator
from intel.errors import CircuitOpenError, SourceError
from intel.models import Action, AgentReport, CandleSeries, Signal, SocialPost

__all__ = ["LlmCoordinator"]

log = structlog.get_logger(__name__)


class LlmCoordinator:
    """The `Coordinator` named "llm"; `chat` None means not configured (`unconfigured` says why)."""

    name = "llm"

    def __init__(
        self,
        config: LlmConfig,
        rules: RulesCoordinator,
        chat: GroqChat | None,
        *,
        unconfigured: str = "GROQ_API_KEY is not set",
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.model = config.model
        self.budget = LlmBudget(config.budget, monotonic)
        self._config = config
        self._rules = rules
        self._chat = chat
        self._unconfigured = unconfigured
        self._answers: TTLCache[str, Proposal] | None = (
            TTLCache(maxsize=256, ttl=config.cache_ttl_s, timer=monotonic)
            if config.cache_ttl_s > 0
            else None
        )

    async def start(self) -> None:
        if self._chat is not None:
            await self._chat.start()

    async def close(self) -> None:
        if self._chat is not None:
            await self._chat.close()

    def describe(self) -> str:
        """One status line: the model, or why the rules answer instead, and the budget left."""
        if self._chat is None:
            return f"llm ({self.model}) not configured: {self._unconfigured}; the rules decide"
        breaker = self._chat.guard.breaker.state.value.replace("_", "-")
        return f"llm ({self.model}), breaker {breaker}; budget left: {self.budget.describe()}"

    async def decide(
        self,
        symbol: str,
        as_of: datetime,
        reports: Mapping[str, AgentReport],
        candles: CandleSeries,
        created_at: datetime,
        *,
        posts: Sequence[SocialPost] = (),
    ) -> Signal:
        rules = await self._rules.decide(symbol, as_of, reports, candles, created_at, posts=posts)
        if self._chat is None:
            return _noted(rules, f"LLM not configured ({self._unconfigured})")
        assessment = self._rules.assess(reports, candles)
        figures = given_figures(rules, assessment, candles)
        try:
            async with asyncio.timeout(self._config.call_timeout_s):
                proposal = await self._propose(self._chat, self._prompt(rules, figures, posts))
        except TimeoutError:
            why = f"the LLM did not answer within {self._config.call_timeout_s:g} s"
        except BudgetExhaustedError as exc:
            why = str(exc)
        except CircuitOpenError:
            why = "the LLM failed repeatedly and rests (circuit open)"
        except SourceError as exc:
            why = f"the LLM is unavailable ({exc})"
        except InvalidReplyError as exc:
            why = f"the LLM's reply was invalid twice ({exc})"
        else:
            return self._recalibrated(rules, self._bounded(rules, assessment, proposal, figures))
        log.warning("llm_fallback", symbol=symbol, why=why)
        return _noted(rules, why)

    def _prompt(
        self, rules: Signal, figures: Mapping[str, float], posts: Sequence[SocialPost]
    ) -> Prompt:
        bounds = self._config.bounds
        caps = {
            **CAPS,
            "tf_min": bounds.timeframe_min_h,
            "tf_max": bounds.timeframe_max_h,
            "drop": bounds.confidence_drop_max,
        }
        return build_prompt(
            rules,
            figures,
            posts,
            caps=caps,
            excerpts=self._config.reddit_excerpts,
            excerpt_chars=self._config.excerpt_chars,
        )

    async def _propose(self, chat: GroqChat, prompt: Prompt) -> Proposal:
        """The validated proposal: from the cache, else asked (one repair on an invalid reply)."""
        key = hashlib.sha256(f"{prompt.system}\0{prompt.user}".encode()).hexdigest()
        if self._answers is not None and key in self._answers:
            return self._answers[key]
        answer = await self._ask(chat, prompt.system, prompt.user)
        try:
            proposal = _parse(answer)
        except InvalidReplyError as exc:
            repair = (
                f"{prompt.user}\n\nYour previous reply was invalid: {exc}. Reply again with "
                "only the JSON object, every key present and within its limits."
            )
            proposal = _parse(await self._ask(chat, prompt.system, repair))
        if self._answers is not None:
            self._answers[key] = proposal
        return proposal

    async def _ask(self, chat: GroqChat, system: str, user: str) -> ChatAnswer:
        chars = len(system) + len(user)
        estimate = round(chars / self._config.budget.chars_per_token)
        tokens = estimate + self._config.max_output_tokens
        self.budget.spend(tokens)  # the first request, refused when over budget

        def sent(attempt: int, headers: Mapping[str, str]) -> None:
            if attempt > 1:  # a retry of the guard's: sent, so counted
                self.budget.record(tokens)
            self.budget.observe(headers)

        return await chat.complete(system, user, sent=sent)

    def _recalibrated(self, rules: Signal, signal: Signal) -> Signal:
        """`signal` (the rules' call as the LLM bounded it) with what the calibration says of
        it, not of the rules' call: an LLM call is outside the map's scope (fitted on the rules);
        a step down to HOLD keeps its own confidence as raw (no probability, no calibration note).
        """
        inherited = self._rules.calibration_notes(rules, rules.reports)
        own = self._rules.calibration_notes(signal, signal.reports)
        kept = tuple(note for note in signal.notes if note not in inherited)
        raw = signal.raw_confidence
        if signal.action is Action.HOLD and rules.action is not Action.HOLD and raw is not None:
            raw = signal.confidence
        return dataclasses.replace(signal, notes=(*kept, *own), raw_confidence=raw)

    def _bounded(
        self,
        rules: Signal,
        assessment: Assessment,
        proposal: Proposal,
        figures: Mapping[str, float],
    ) -> Signal:
        bounded = apply_bounds(
            rules, self._rules.hold_confidence(assessment), proposal, self._config.bounds
        )
        clamps = list(bounded.clamps)
        allowed = (bounded.confidence, bounded.timeframe_hours)
        argued_other_call = proposal.action != bounded.action.value

        def checked(texts: Sequence[str], fallback: tuple[str, ...], what: str) -> tuple[str, ...]:
            cleaned = tuple(t for t in (clean_text(text) for text in texts) if t)
            invented = [f for text in cleaned for f in unmatched_figures(text, figures, allowed)]
            if argued_other_call:
                clamps.append(f"{what}: the rules' text, as the LLM argued for {proposal.action}")
                return fallback
            if invented:
                shown = ", ".join(dict.fromkeys(invented[:3]))
                clamps.append(f"{what}: the rules' text, as the LLM cited {shown} (not given)")
                return fallback
            return cleaned or fallback

        thesis = checked((proposal.thesis,), (rules.thesis,), "thesis")
        risks = checked(proposal.risk_factors, rules.risk_factors, "risk factors")
        drivers = checked(proposal.key_drivers, rules.key_drivers, "key drivers")
        return dataclasses.replace(
            rules,
            action=bounded.action,
            confidence=bounded.confidence,
            thesis=" ".join(thesis),
            risk_factors=risks,
            timeframe_hours=bounded.timeframe_hours,
            position_size=bounded.position_size,
            coordinator=self.name,
            clamps=tuple(clamps),
            key_drivers=drivers,
            model=self.model,
        )


def _parse(answer: ChatAnswer) -> Proposal:
    if answer.problem is not None:
        raise InvalidReplyError(answer.problem)
    return parse_reply(answer.content)


def _noted(signal: Signal, why: str) -> Signal:
    return dataclasses.replace(signal, notes=(*signal.notes, f"Rules signal: {why}"))
