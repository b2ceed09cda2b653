"""The assembly's list, the pipeline's two stages and the one policy, without sockets."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import pytest

from gateway.assembly import FILTERS, KINDS, SCHEMA, chain_names, default_chain, parse_config
from gateway.config import Section
from gateway.content import Content
from gateway.context import Envelope, MessageContext
from gateway.pipeline import Pipeline, Stage, apply_change
from gateway.policy import Policy, PolicyConfig, groups_of, parse_policy
from gateway.verdicts import (
    Action,
    Change,
    Finding,
    Kind,
    Release,
    Report,
    Severity,
    SmtpCode,
)

BASE = '[gateway]\ncouncil_domains = ["stanion-pc.gov.uk"]\n'
TEST_KINDS = (
    Kind("bad", "refused", Action.REFUSE, Action.REFUSE),
    Kind("later", "deferred", Action.TEMPFAIL, Action.TEMPFAIL,
         tempfail=SmtpCode(451, "4.7.1")),
    Kind("junkish", "held", Action.HOLD, Action.HOLD),
    Kind("marked", "tagged", Action.TAG, Action.TAG),
    Kind("pest", "never passed on", Action.REFUSE, Action.REFUSE, Release.NEVER),
    Kind("group.one", "in a group", Action.HOLD, Action.REFUSE, Release.FORCE),
    Kind("group.two", "in a group"),
)
POLICY = Policy((*KINDS, *TEST_KINDS))


def _ctx(data: bytes = b"Subject: hi\r\n\r\nbody\r\n") -> MessageContext:
    return MessageContext(id="t1", side="inbound",
                          envelope=Envelope("a@example.org", ("clerk@stanion-pc.gov.uk",)),
                          data=data)


def found(name: str, code: str) -> Finding:
    return Finding(name, code, Severity.MEDIUM, f"{name} found {code}")


@dataclass
class Fixed:
    """A step that reports what it is told to and records that it ran."""

    name: str
    report: Report
    log: list[str] = field(default_factory=list)
    stage: Stage = Stage.CHECK
    timeout: float | None = None

    async def check(self, ctx: MessageContext) -> Report:
        self.log.append(self.name)
        return self.report


def test_every_filter_is_listed_once_with_its_kinds() -> None:
    names = [f.name for f in FILTERS]
    assert len(names) == len(set(names))
    codes = [k.code for k in KINDS]
    assert len(codes) == len(set(codes)), "a finding code is declared twice"
    assert {"virus", "attachment.macro", "junk", "confidential.marker"} <= set(codes)


def test_the_default_chains_and_the_fixed_order_of_finishing_steps() -> None:
    assert default_chain("inbound") == ["antivirus", "attachments", "junk", "confidential",
                                        "trace"]
    config = parse_config(BASE + '[outbound]\nfilters = ["dkim", "trace", "language", '
                                 '"footer", "antivirus"]\n')
    # Checks keep the listed order; footer, trace and DKIM always come last, DKIM very last.
    assert chain_names(config, "outbound") == ["language", "antivirus", "footer", "trace",
                                               "dkim"]
    assert SCHEMA.filters["inbound"] == tuple(default_chain("inbound"))


def test_configured_order_is_kept() -> None:
    config = parse_config(BASE + '[inbound]\nfilters = ["trace"]\n')
    assert chain_names(config, "inbound") == ["trace"]


@pytest.mark.parametrize("code,action", [("bad", Action.REFUSE), ("later", Action.TEMPFAIL)])
async def test_a_refusal_or_deferral_ends_the_run(code: str, action: Action) -> None:
    log: list[str] = []
    pipe = Pipeline("inbound", [
        Fixed("one", Report(), log), Fixed("two", Report((found("two", code),)), log),
        Fixed("three", Report(), log), Fixed("last", Report(), log, Stage.FINISH)], POLICY)
    outcome = await pipe.run(_ctx())
    assert outcome.decision.action is action
    assert log == ["one", "two"]
    assert [s.filter for s in outcome.steps] == ["one", "two"]


async def test_a_hold_lets_later_checks_run_but_not_the_finishing_steps() -> None:
    log: list[str] = []
    pipe = Pipeline("inbound", [
        Fixed("one", Report((found("one", "junkish"),), Change((("X-One", "1"),))), log),
        Fixed("two", Report((found("two", "marked"),), tag=Change((("X-Two", "2"),))), log),
        Fixed("finish", Report(change=Change((("X-Fin", "1"),))), log, Stage.FINISH)], POLICY)
    outcome = await pipe.run(_ctx())
    assert outcome.decision.action is Action.HOLD
    assert log == ["one", "two"]
    assert [f.code for f in outcome.findings] == ["junkish", "marked"]  # all of them
    assert outcome.held is not None and outcome.held.filter == "one"
    # The held copy is the message as it stood after the check that held it.
    assert outcome.held.data == b"X-One: 1\r\nSubject: hi\r\n\r\nbody\r\n"


async def test_resuming_after_the_holder_with_its_finding_approved() -> None:
    log: list[str] = []
    held_by = Fixed("one", Report((found("one", "junkish"),)), log)
    pipe = Pipeline("inbound", [
        held_by, Fixed("two", Report(), log),
        Fixed("finish", Report(change=Change((("X-Fin", "1"),))), log, Stage.FINISH)], POLICY)
    ctx = _ctx()
    ctx.findings.append(found("one", "junkish"))
    outcome = await pipe.run(ctx, after="one", approved=frozenset({"junkish"}))
    assert log == ["two", "finish"]
    assert outcome.decision.action is Action.DELIVER
    assert outcome.data.startswith(b"X-Fin: 1\r\n")
    # A hold that was not approved still holds.
    again = await pipe.run(_ctx(), after="one", approved=frozenset({"other"}))
    assert again.decision.action is Action.DELIVER  # "one" did not run again
    assert (await pipe.run(_ctx())).decision.action is Action.HOLD


async def test_tag_changes_apply_only_when_the_policy_tags() -> None:
    tagger = Fixed("t", Report((found("t", "marked"),), tag=Change((("X-Tagged", "yes"),))))
    outcome = await Pipeline("inbound", [tagger], POLICY).run(_ctx())
    assert outcome.decision.action is Action.TAG
    assert outcome.data.startswith(b"X-Tagged: yes\r\n")
    quiet = Policy((*KINDS, *TEST_KINDS), PolicyConfig({"marked": (Action.DELIVER, None)}))
    untagged = await Pipeline("inbound", [tagger], quiet).run(_ctx())
    assert untagged.decision.action is Action.DELIVER
    assert b"X-Tagged" not in untagged.data


async def test_later_checks_see_earlier_changes() -> None:
    seen: list[bytes] = []

    class Looker:
        name = "looker"
        stage = Stage.CHECK
        timeout: float | None = None

        async def check(self, ctx: MessageContext) -> Report:
            seen.append(ctx.data)
            assert ctx.message["X-One"] == "1"
            return Report()

    pipe = Pipeline("inbound", [Fixed("one", Report(change=Change((("X-One", "1"),)))),
                                Looker()], POLICY)
    outcome = await pipe.run(_ctx())
    assert outcome.decision.action is Action.DELIVER
    assert seen == [b"X-One: 1\r\nSubject: hi\r\n\r\nbody\r\n"]


async def test_a_failing_check_is_a_finding_that_defers() -> None:
    class Broken:
        name = "broken"
        stage = Stage.CHECK
        timeout: float | None = None

        async def check(self, ctx: MessageContext) -> Report:
            raise RuntimeError("boom")

    outcome = await Pipeline("inbound", [Broken()], POLICY).run(_ctx())
    assert outcome.decision.action is Action.TEMPFAIL
    assert outcome.decision.smtp == SmtpCode(451, "4.3.0")
    assert outcome.decision.text == "The broken check could not finish; please try again later"
    assert [s.outcome for s in outcome.steps] == ["error"]


def test_the_strongest_action_wins_and_names_why() -> None:
    findings = (found("a", "marked"), found("b", "junkish"), found("c", "group.two"))
    decision = POLICY.decide(findings, "inbound")
    assert decision.action is Action.HOLD
    assert decision.reasons == ("b found junkish",)
    refused = POLICY.decide((*findings, found("d", "bad")), "outbound")
    assert (refused.action, refused.text, refused.smtp) == (
        Action.REFUSE, "d found bad", SmtpCode(554, "5.7.1"))


def test_groups_and_the_most_specific_key_win() -> None:
    assert groups_of("attachment.macro") == ["attachment.macro", "attachment"]
    table = PolicyConfig({"group": (Action.TAG, Action.TAG),
                          "group.two": (Action.HOLD, None)})
    policy = Policy((*KINDS, *TEST_KINDS), table)
    assert policy.action_for("group.one", "inbound") is Action.TAG
    assert policy.action_for("group.two", "inbound") is Action.HOLD
    assert policy.action_for("group.two", "outbound") is Action.TAG
    assert policy.action_for("unknown", "inbound") is Action.DELIVER


def test_an_approved_hold_delivers_but_an_approved_refusal_still_refuses() -> None:
    approved = frozenset({"junkish", "bad"})
    assert POLICY.decide((found("x", "junkish"),), "inbound", approved).action \
        is Action.DELIVER
    assert POLICY.decide((found("x", "bad"),), "inbound", approved).action is Action.REFUSE


def test_release_rules_take_the_strictest() -> None:
    assert POLICY.release_of(["marked"]) is Release.YES
    assert POLICY.release_of(["marked", "group.one"]) is Release.FORCE
    assert POLICY.release_of(["group.one", "pest"]) is Release.NEVER
    assert POLICY.release_of(["virus"]) is Release.NEVER
    assert POLICY.release_of(["attachment.double-extension"]) is Release.FORCE


@pytest.mark.parametrize("raw,problem", [
    ({"virus": "deliver"}, "is never passed on"),
    ({"attachment": {"inbound": "tag", "outbound": "nope"}}, '"nope" is not an action'),
    ({"atachment": "hold"}, 'did you mean "attachment"'),
    ({"junk": {"sideways": "hold"}}, "sideways"),
])
def test_the_policy_table_is_checked(raw: dict[str, object], problem: str) -> None:
    problems: list = []
    parse_policy(Section(raw, "policy", problems), KINDS)
    assert any(problem in str(p) for p in problems), problems


def test_apply_change_folds_long_and_encodes_non_ascii() -> None:
    out = apply_change(b"Subject: x\r\n\r\n", Change((("X-Note", "café " * 30),)))
    head = out.split(b"\r\n\r\n")[0]
    assert all(len(line) <= 78 for line in head.split(b"\r\n"))
    assert b"=?utf-8?" in out
    assert out.endswith(b"Subject: x\r\n\r\n")
    assert apply_change(b"a", Change(new_bytes=b"b", add_headers=(("X", "1"),))) == b"X: 1\r\nb"


@pytest.mark.parametrize("code,enhanced", [(451, "5.7.1"), (554, "4.7.1"), (250, "2.0.0")])
def test_reply_codes_are_checked(code: int, enhanced: str) -> None:
    with pytest.raises(ValueError):
        SmtpCode(code, enhanced)


def test_header_changes_keep_the_body_buffer() -> None:
    """Fields put on top and a tagged subject rewrite the header only: the body is the same
    buffer, read from an offset."""
    body = b"line\r\n" * 1000
    buf = b"Subject: hello\r\nFrom: a@b\r\n\r\n" + body
    out = apply_change(Content(buf), Change((("X-Note", "1"),), subject_prefix="[Junk]"))
    assert out.buf is buf
    assert out.joined() == b"X-Note: 1\r\nSubject: [Junk] hello\r\nFrom: a@b\r\n\r\n" + body
    assert out.size == len(out.joined())
    assert apply_change(Content(buf), None) == Content(buf)


@dataclass
class Preparing:
    """A check that works something out ahead (``prepare``) and reports what it was given."""

    name: str
    seen: list[tuple[str, object]]
    raises: Exception | None = None
    wait: threading.Event | None = None
    stage: Stage = Stage.CHECK
    timeout: float | None = None

    def prepare(self, ctx: MessageContext) -> str:
        self.seen.append(("prepare", (threading.get_ident(), ctx._message is not None)))
        if self.wait is not None:
            self.wait.wait(10)
        if self.raises is not None:
            raise self.raises
        return f"{self.name} worked out"

    async def check(self, ctx: MessageContext) -> Report:
        self.seen.append(("check", ctx.prepared(self.name)))
        return Report()


async def test_the_checks_work_out_ahead_in_one_visit_to_a_worker_thread() -> None:
    seen: list[tuple[str, object]] = []
    pipe = Pipeline("inbound", [Preparing("a", seen), Fixed("plain", Report()),
                                Preparing("b", seen)], POLICY)
    outcome = await pipe.run(_ctx())
    assert outcome.decision.action is Action.DELIVER
    (_, (thread_a, parsed_a)), (_, (thread_b, parsed_b)) = seen[:2]
    assert thread_a == thread_b != threading.get_ident()  # one worker thread, not the loop
    assert parsed_a and parsed_b  # parsed in that same visit, before either
    assert seen[2:] == [("check", "a worked out"), ("check", "b worked out")]


async def test_what_was_worked_out_on_a_message_since_changed_is_not_used() -> None:
    seen: list[tuple[str, object]] = []
    new = Fixed("rewrite", Report(change=Change(new_bytes=b"Subject: other\r\n\r\nnew\r\n")))
    trace = Fixed("trace", Report(change=Change((("X-Council-Note", "1"),))))
    pipe = Pipeline("inbound", [Preparing("a", seen), trace, Preparing("b", seen), new,
                                Preparing("c", seen)], POLICY)
    await pipe.run(_ctx())
    # Our own fields on top leave the message the same; new bytes do not.
    assert [s for s in seen if s[0] == "check"] == [
        ("check", "a worked out"), ("check", "b worked out"), ("check", None)]


async def test_what_working_out_raised_is_met_in_that_checks_turn() -> None:
    seen: list[tuple[str, object]] = []
    pipe = Pipeline("outbound", [Preparing("a", seen), Preparing("b", seen, ValueError("x"))],
                    POLICY)
    outcome = await pipe.run(_ctx())
    assert [s[0] for s in seen] == ["prepare", "prepare", "check"]  # a's check ran first
    assert [(f.filter, f.code) for f in outcome.findings] == [("b", "malformed")]
    assert outcome.decision.action is Action.REFUSE
    assert [(s.filter, s.outcome) for s in outcome.steps] == [("a", "ok"), ("b", "malformed")]


async def test_working_out_that_never_ends_defers_the_message() -> None:
    seen: list[tuple[str, object]] = []
    stuck = threading.Event()
    pipe = Pipeline("inbound", [Preparing("a", seen, wait=stuck)], POLICY, default_timeout=0.2)
    try:
        outcome = await pipe.run(_ctx())
    finally:
        stuck.set()
    assert outcome.decision.action is Action.TEMPFAIL
    assert [(f.filter, f.code) for f in outcome.findings] == [("pipeline", "check-failed")]
    assert [s[0] for s in seen] == ["prepare"]  # the check itself never ran
