"""Lifecycle tier, issue 25's kill switch: `pam-kubeconfig revoke USER` locks
a user out on this host now (revoke, cut, no token minted until `unlock` or
`--for` has passed). Sessions are the real libpam's (kc-session-driver);
every verdict is the API server's: a token refused, a watch held by the
user's process cut, our Secrets (admin kubectl), kubectl as the user."""
import datetime
import os
import re
import subprocess
import time

import pytest

from clients import wait_for
from conftest import (BUILD, HELPER, STATE_DIR, Driver, current_token, helper, kubeconfig_of, kubectl_as,
                      our_secrets, run_bounded, security, token_path, unique_host_id)
from test_round_two import ALICE, Watchers, cfg_for

# Revocation to refusal: the API server's authentication cache (~10 s) and our polling.
CACHE = 15


@pytest.fixture
def host():
    return unique_host_id()


@pytest.fixture
def alice(cluster):
    cluster.ensure_sa("team-a", "alice", clusterrole="view")


@pytest.fixture
def unlocks():
    """Users whose locks the test may leave: lifted at the end (a lock names a user, not a uid)."""
    held = []
    yield held.append
    for user, cfg in held:
        helper("unlock", user, "--config", cfg)


def revoke(user, cfg, *flags):
    start = time.time()
    r = helper("revoke", user, *flags, "--config", cfg)
    return r, start


def open_session(workdir, users, pam_service, host, unlocks):
    """A new user with a session open through the real libpam on their own
    config (their lock lifted at the end): (user, cfg, PAM service, Driver)."""
    user = users.make()
    cfg = cfg_for(workdir, host, user)
    unlocks((user, cfg))
    svc = pam_service(f"config={cfg} timeout=10")
    d = Driver(svc, user)
    assert d.open_rc == 0, d.lines
    return user, cfg, svc, d


def lock_message(d):
    return [i for i in d.infos if "locked" in i]


def whoami_as(users, user):
    """Who kubectl, run by the user with their kubeconfig, authenticates as."""
    p = kubectl_as(user, kubeconfig_of(users, user), "auth", "whoami", "-o", "jsonpath={.status.userInfo.username}")
    return p.stdout.strip() if p.returncode == 0 else f"kubectl failed ({p.returncode}): {p.stderr.strip()[-300:]}"


def until_of(text):
    m = re.search(r"until (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) UTC", text)
    assert m, text
    return datetime.datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S").replace(
        tzinfo=datetime.timezone.utc).timestamp()


@security("revoke USER ends an open session's access now (its token refused within the API server's cache, its "
          "watch cut), refuses the next login's mint with a message naming the lock; unlock gives the open session "
          "a working token back at once")
def test_revoke_ends_an_open_sessions_access_and_unlock_gives_it_back(cluster, workdir, users, pam_service, alice,
                                                                      host, unlocks):
    user, cfg, svc, d = open_session(workdir, users, pam_service, host, unlocks)
    token = current_token(users, user)
    watch = Watchers(workdir, users, user, token)
    try:
        assert wait_for(lambda: watch.ready() == 1, 30), watch.text()
        r, start = revoke(user, cfg)
        assert r.returncode == 0, r.stdout + r.stderr
        assert f"{user} is locked on every cluster until an administrator unlocks it" in r.stdout, r.stdout
        assert wait_for(lambda: watch.ended() == 1, 15), f"the open session's watch was not cut:\n{watch.text()}"
        assert not token_path(users, user).exists()
        # The next login: no mint, and the user is told why.
        d2 = Driver(svc, user)
        try:
            assert d2.open_rc == 0, d2.lines  # an optional module: the ssh login itself goes on
            assert lock_message(d2), d2.lines
            assert "cluster test: your access is locked by an administrator until an administrator unlocks it" \
                in lock_message(d2)[0], d2.lines
            assert "KUBECONFIG" not in d2.env
        finally:
            d2.close()
        assert not token_path(users, user).exists()
        assert our_secrets(cluster, host, user) == [], "a Secret of the user's exists while they are locked out"
        # unlock, well within the 12 s the revoke refuses the user's new connections for: the session open
        # since before the lock has a working token again, now, and the user's kubectl works with it.
        r = helper("unlock", user, "--config", cfg)
        assert r.returncode == 0 and f"{user} is unlocked" in r.stdout, r.stdout + r.stderr
        back = current_token(users, user)
        assert back != token and cluster.whoami(back) == ALICE
        assert whoami_as(users, user) == ALICE
        unlocked = time.time() - start
        # The revoked token stays refused: the unlock's Secret is another object.
        cluster.wait_refused(token, limit=30)
        took = time.time() - start
        print(f"\nrevoke: watch cut at once; unlocked and working {unlocked:.1f}s after the revoke began; "
              f"the revoked token refused {took:.1f}s after it")
        assert took <= CACHE, f"the revoked token was accepted for {took:.1f}s"
    finally:
        watch.stop()
        d.close()


@security("revoke USER --for 30s lapses by itself: the lock refuses logins until its time, then the next refresh "
          "gives the open session a token and logins mint again, with no unlock")
def test_a_lock_for_30s_lapses_by_itself(cluster, workdir, users, pam_service, alice, host, unlocks):
    user, cfg, svc, d = open_session(workdir, users, pam_service, host, unlocks)
    token = current_token(users, user)
    try:
        r, start = revoke(user, cfg, "--for", "30s")
        assert r.returncode == 0, r.stdout + r.stderr
        until = until_of(r.stdout)
        assert 29 <= until - start <= 31, r.stdout
        d2 = Driver(svc, user)
        try:
            msg = lock_message(d2)
            assert msg and until_of(msg[0]) == until, d2.lines
        finally:
            d2.close()
        assert not token_path(users, user).exists() and our_secrets(cluster, host, user) == []
        cluster.wait_refused(token, limit=30)
        # A refresh within the lock changes nothing.
        r = run_bounded(["refresh", "--config", cfg], 20000)
        assert r.returncode == 0 and not token_path(users, user).exists(), r
        time.sleep(max(0.0, until - time.time()) + 0.5)  # the lock's own end, on the wall clock
        r = run_bounded(["refresh", "--config", cfg], 20000)
        assert r.returncode == 0, r
        assert token_path(users, user).exists(), "the lock lapsed and the next refresh gave the open session nothing"
        assert cluster.whoami(current_token(users, user)) == ALICE
        assert whoami_as(users, user) == ALICE
        d3 = Driver(svc, user)
        try:
            assert d3.open_rc == 0 and not lock_message(d3) and "KUBECONFIG" in d3.env, d3.lines
        finally:
            d3.close()
        assert "locked" not in helper("explain", user, "--config", cfg).stdout
    finally:
        d.close()


@security("a second revoke never shortens a lock that stands: `revoke USER --for 1s` after `revoke USER` (or "
          "after a longer --for) keeps the longer lock, says so, and refresh mints nothing once the second's time "
          "has passed")
def test_a_shorter_revoke_keeps_the_longer_lock(cluster, workdir, users, pam_service, alice, host, unlocks):
    user, cfg, svc, d = open_session(workdir, users, pam_service, host, unlocks)
    try:
        r, _ = revoke(user, cfg, "--for", "1h")
        assert r.returncode == 0, r.stdout + r.stderr
        hour = until_of(r.stdout)
        r, _ = revoke(user, cfg, "--for", "1s")
        assert r.returncode == 0, r.stdout + r.stderr
        assert until_of(r.stdout) == hour and "a lock that stands longer is kept" in r.stdout, r.stdout
        r, _ = revoke(user, cfg)
        assert r.returncode == 0 and "until an administrator unlocks it" in r.stdout, r.stdout + r.stderr
        r, _ = revoke(user, cfg, "--for", "1s")
        assert r.returncode == 0, r.stdout + r.stderr
        assert f"{user} is locked on every cluster until an administrator unlocks it" in r.stdout, r.stdout
        time.sleep(2.5)
        r = run_bounded(["refresh", "--config", cfg], 20000)
        assert r.returncode == 0, r
        assert not token_path(users, user).exists(), "a shorter revoke's end lifted the lock that stood"
        assert our_secrets(cluster, host, user) == []
        assert "locked" in helper("explain", user, "--config", cfg).stdout
    finally:
        d.close()


@security("two administrators at once: a revoke for an hour that has read the locks and is about to write, and a "
          "revoke until unlock meanwhile, leave the user locked until unlock (the shorter one never ends the longer); "
          "an unlock meanwhile is not undone by it either")
def test_two_revokes_at_once_keep_the_longer_lock(cluster, workdir, users, alice, host, unlocks):
    user = users.make()
    cfg = cfg_for(workdir, host, user)
    unlocks((user, cfg))
    # The hour's revoke holds its lock file's renameat() for 1.5 s (tests/hardening/failsyscall.c).
    slow_env = {**os.environ, "LD_PRELOAD": str(BUILD / "tests" / "failsyscall.so"), "KC_FAIL": "slow-lock-write"}
    slow = subprocess.Popen([str(HELPER), "revoke", user, "--for", "1h", "--config", str(cfg)], env=slow_env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(0.5)
    r, _ = revoke(user, cfg)
    out, err = slow.communicate(timeout=60)
    assert slow.returncode == 0 and r.returncode == 0, (out, err, r.stdout, r.stderr)
    r, _ = revoke(user, cfg, "--for", "1s")
    assert f"{user} is locked on every cluster until an administrator unlocks it" in r.stdout, \
        "the hour's revoke, racing one until unlock, shortened the lock: " + r.stdout

    # An unlock that has read the lock of two hours and is about to remove it,
    # and a revoke for an hour meanwhile: the revoke must not report a lock
    # that the unlock then removes.
    helper("unlock", user, "--config", cfg)
    r, _ = revoke(user, cfg, "--for", "2h")
    assert r.returncode == 0, r.stdout + r.stderr
    slow = subprocess.Popen([str(HELPER), "unlock", user, "--config", str(cfg)], env=slow_env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(0.5)
    r, _ = revoke(user, cfg, "--for", "1h")
    out, err = slow.communicate(timeout=60)
    assert slow.returncode == 0 and r.returncode == 0, (out, err, r.stdout, r.stderr)
    said = until_of(r.stdout)
    r, _ = revoke(user, cfg, "--for", "1s")
    assert "a lock that stands longer is kept" in r.stdout and until_of(r.stdout) == said, \
        "a revoke that said the user was locked was undone by an unlock it had raced: " + r.stdout


@security("a reader that finds a lapsed lock and removes it (refresh here) does not remove the lock a revoke "
          "writes in its place meanwhile: the user stays locked")
def test_removing_a_lapsed_lock_spares_a_revoke_written_meanwhile(cluster, workdir, users, alice, host, unlocks):
    user = users.make()
    cfg = cfg_for(workdir, host, user)
    unlocks((user, cfg))
    r, _ = revoke(user, cfg, "--for", "1s")
    assert r.returncode == 0, r.stdout + r.stderr
    time.sleep(2.5)
    # refresh reads the lapsed lock and holds its unlinkat() of it for 1.5 s (failsyscall.c).
    slow_env = {**os.environ, "LD_PRELOAD": str(BUILD / "tests" / "failsyscall.so"), "KC_FAIL": "slow-lock-write"}
    reader = subprocess.Popen([str(HELPER), "refresh", "--config", str(cfg), "--deadline", "30000"], env=slow_env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(0.5)
    r, _ = revoke(user, cfg)
    out, err = reader.communicate(timeout=60)
    assert r.returncode == 0 and "until an administrator unlocks it" in r.stdout, r.stdout + r.stderr
    r, _ = revoke(user, cfg, "--for", "1s")
    assert f"{user} is locked on every cluster until an administrator unlocks it" in r.stdout, \
        "a refresh removing the lapsed lock removed the revoke written meanwhile: " + r.stdout + out + err


@security("a lock survives a revoke that could not reach the API server, and refresh honours it for a session "
          "open since before the lock: it revokes and never mints again, while the session stays open")
def test_a_lock_survives_and_refresh_honours_it_for_a_session_open_before_it(cluster, workdir, users, pam_service,
                                                                             proxy, alice, host, unlocks):
    user = users.make()
    cfg = workdir.alice_config(user, server=proxy.server,
                               extra=f"host_id: {host}\nnetwork:\n  connect_timeout: 2s\n  request_timeout: 2s\n"
                                     f"  after_failure: 1s\n")
    unlocks((user, cfg))
    d = Driver(pam_service(f"config={cfg} timeout=10"), user)
    assert d.open_rc == 0, d.lines
    token = current_token(users, user)
    try:
        proxy.set("down")
        r, _ = revoke(user, cfg)
        assert r.returncode != 0 and "the lock stands" in r.stderr, r.stdout + r.stderr
        assert cluster.whoami(token) == ALICE, "the premise: the revocation could not reach the API server"
        assert our_secrets(cluster, host, user), "the premise: the user's Secret is still there"
        proxy.set("forward")
        # The timer's refresh, again and again until the pending revocation is through.
        runs = 0

        def revoked():
            nonlocal runs
            runs += 1
            r = run_bounded(["refresh", "--config", cfg], 20000)
            assert not r.killed, r
            return not our_secrets(cluster, host, user)

        assert wait_for(revoked, 30, step=0.5), "refresh never revoked the locked user's Secret"
        run_bounded(["refresh", "--config", cfg], 20000)
        cluster.wait_refused(token, limit=30)
        print(f"\nthe locked user's Secret went at refresh run {runs}")
        assert our_secrets(cluster, host, user) == [], "refresh minted for a locked user"
        assert not token_path(users, user).exists()
        assert d.p.poll() is None and list((STATE_DIR / str(users.uid(user))).glob("session-*.json")), \
            "the session open before the lock did not stay open"
        # gc and another refresh leave the lock standing.
        assert not run_bounded(["gc", "--config", cfg], 20000).killed
        run_bounded(["refresh", "--config", cfg], 20000)
        assert "locked by" in helper("explain", user, "--config", cfg).stdout
        assert our_secrets(cluster, host, user) == [] and not token_path(users, user).exists()
    finally:
        proxy.set("forward")
        d.close()


@security("revoke USER works where the fleet's locks cannot be listed (a namespace the helper may not read): "
          "an outage of the fleet's namespace stops mints, never a revocation")
def test_revoke_works_where_the_fleets_locks_cannot_be_read(cluster, workdir, users, pam_service, alice, host,
                                                            unlocks):
    user = users.make()
    cfg = cfg_for(workdir, host, user)
    unlocks((user, cfg))
    svc = pam_service(f"config={cfg} timeout=10")
    d = Driver(svc, user)
    try:
        token = current_token(users, user)
        assert cluster.whoami(token) == ALICE
        # The config gains a fleet namespace the minter holds no Role in: every LIST of its locks is
        # refused (403), so refresh and revoke cannot tell the fleet's locks on this cluster.
        fleet = cfg_for(workdir, host, user, extra=f"fleet:\n  namespace: kc-unreadable-{host[:8]}\n")
        r, _ = revoke(user, fleet)
        assert r.returncode == 0, r.stdout + r.stderr
        assert not token_path(users, user).exists()
        cluster.wait_refused(token, limit=CACHE)
        assert our_secrets(cluster, host, user) == [], "the user's Secret outlived the revoke"
    finally:
        d.close()
