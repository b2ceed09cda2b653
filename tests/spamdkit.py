"""A real spamd (/usr/sbin/spamd, installed by scripts/setup --test) on loopback, with the test's
own rules (no rule updates are fetched): one body rule worth 10 points against spamd's limit of 5.

Started with ``learning=True`` it also allows TELL and keeps a Bayes database of its own in the
instance's private folder. Bayes normally waits for 200 learned hams and spams before it gives an
opinion; here one of each is enough: teach it :func:`seed_messages` first, and the next lesson a
test gives shows in the scores at once.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from tests.mailmaker import make_mail

__all__ = ["SPAM_PHRASE", "free_port", "running_spamd", "seed_messages"]

SPAMD = "/usr/sbin/spamd"
SPAM_PHRASE = "zz council test spam zz"
RULES = f"""body COUNCIL_TEST_SPAM /{SPAM_PHRASE}/i
describe COUNCIL_TEST_SPAM Test phrase for the council gateway
score COUNCIL_TEST_SPAM 10.0
required_score 5.0
"""
# The stock rules' names and ranges (SpamAssassin's 23_bayes.cf), with the test's own scores:
# BAYES_00 outweighs the test phrase's 10 points against the limit of 5, so that one release
# shows in the gateway's decision and not only in the score.
BAYES_RULES = """use_bayes 1
use_bayes_rules 1
bayes_auto_learn 0
bayes_min_ham_num 1
bayes_min_spam_num 1
bayes_path {path}
body BAYES_00 eval:check_bayes('0.00', '0.01')
tflags BAYES_00 nice learn
describe BAYES_00 Bayes spam probability is 0 to 1%
score BAYES_00 -6.0
body BAYES_99 eval:check_bayes('0.99', '1.00')
tflags BAYES_99 learn
describe BAYES_99 Bayes spam probability is 99 to 100%
score BAYES_99 4.0
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def seed_messages() -> tuple[bytes, bytes]:
    """One ham and one spam about nothing the tests send: Bayes counts them, they sway no test."""
    ham = make_mail(subject="Precept for next year",
                    body="The finance committee agreed the precept and the grass cutting "
                         "contract for the playing field.\n")
    spam = make_mail(subject="Replica watches",
                     body="Genuine replica watches and designer handbags shipped from our "
                          "warehouse overnight.\n")
    return ham, spam


@contextlib.contextmanager
def running_spamd(*, learning: bool = False) -> Iterator[tuple[str, int]]:
    base = Path(tempfile.mkdtemp(prefix="council-spamd-"))
    rules, site, bayes = base / "rules", base / "site", base / "bayes"
    for d in (rules, site, bayes):
        d.mkdir()
    for d in (base, rules, site):
        os.chmod(d, 0o755)  # spamd's child drops to "nobody" when started as root
    if os.geteuid() == 0:
        nobody = pwd.getpwnam("nobody")
        os.chown(bayes, nobody.pw_uid, nobody.pw_gid)  # it writes the Bayes database there
    text = RULES + (BAYES_RULES.format(path=bayes / "bayes") if learning else "use_bayes 0\n")
    (rules / "50_council_test.cf").write_text(text)
    for pre in Path("/etc/spamassassin").glob("*.pre"):  # plugin loading, shipped with spamd
        shutil.copy(pre, site / pre.name)
    port = free_port()
    cmd = [SPAMD, f"--listen=127.0.0.1:{port}", f"--configpath={rules}",
           f"--siteconfigpath={site}", "-x", "--max-children=1", "-s", "stderr"]
    if learning:
        cmd.append("--allow-tell")
    if os.geteuid() == 0:
        cmd += ["-u", "nobody"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while True:  # wait for the listener, with a deadline
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError as e:
                if proc.poll() is not None or time.monotonic() > deadline:
                    proc.kill()
                    raise RuntimeError("spamd did not start: " + (
                        proc.stderr.read().decode() if proc.stderr else "")) from e
                time.sleep(0.05)
        yield "127.0.0.1", port
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(10)
        if proc.stderr:
            proc.stderr.close()
        shutil.rmtree(base, ignore_errors=True)

