"""Tier 7, schedules: random schedules of logins, logouts, refresh, gc, kills,
stops, group and mapping changes, account deletion and API faults, each on a
bastion of its own, with the invariants of DESIGN.md checked against the API
server itself (harness.py). Issue 23's faults are among them: a session's
process killed without close, a logout while the user database fails, DELETEs
refused (403) until healed, a uid given to a new account, a cluster's server
changed (schedule.py lists every step). Issue 25's: sessions with an SSH
certificate of the run's CA (most of them ending within the schedule), and
the kill switch (`revoke USER [--for]`, `unlock USER`).

  I1  all of a user's sessions closed and one gc with the API healthy: no
      Secret of ours for (this host, that user), or every token bound to one
      that remains has expired (never within a schedule: the check stays
      strict), and every token minted for them refused (after the
      authentication cache); for a reused uid, for the old name and the new;
  I2  an open, still-mapped session's token authenticates as the mapped
      ServiceAccount (after the schedule settles: API healthy, one refresh),
      and still does after the authentication cache; a token minted before
      its cluster's server moved is refused by then;
  I3  a grant that no longer maps is revoked by that refresh;
  I4  no command overruns its deadline (timeout= for open and close,
      --deadline for gc, refresh, revoke and unlock) by more than 1 s, whatever
      the user does to their processes; no process of the helper outlives
      every deadline;
  I5  no token of a certificate's elevation works once every certificate
      that justified it ended (or its session died) and a refresh ran with the
      API healthy, after the authentication cache: checked at the settle and
      after each such refresh of the steps; I2 holds an open session of a user
      with a live certificate to the elevated account;
  I6  a locked user holds no token that works and no open stream: a watch of
      theirs is cut by the time `revoke` returns (4 s), every token minted
      before a `revoke` that returned 0 is refused after the authentication
      cache, none is minted while the lock stands, and at the settle a user
      still locked holds none that works.

SCHEDULES (default 200) schedules run from SEED (default: a fresh one, printed),
SCHEDULE_WORKERS at a time. One test per seed: a failing one prints the
schedule and the command that replays it."""
import os
import secrets
import time
from concurrent.futures import ThreadPoolExecutor, wait

import pytest

import harness
import schedule as sch

N = int(os.environ.get("SCHEDULES") or 200)
BASE = int(os.environ["SEED"]) if os.environ.get("SEED") else secrets.randbelow(10 ** 6) * 1000
SEEDS = [BASE + i for i in range(N)]
if os.environ.get("SEEDS"):  # a list to replay: SEEDS="1002 1008"
    SEEDS = [int(x) for x in os.environ["SEEDS"].replace(",", " ").split()]
    BASE, N = SEEDS[0], len(SEEDS)
WORKERS = int(os.environ.get("SCHEDULE_WORKERS") or 20)
VERBOSE = os.environ.get("SCHEDULE_VERBOSE") == "1"


def world_manifest():
    docs = []
    for c in (0, 1):
        for part, accounts in (("a", ["sa-1", "sa-2"]), ("b", ["sa-3", "admin", "elevated"])):
            ns = f"kcs{c}-{part}"
            docs.append(f"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {ns}\n")
            docs += [f"apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: {a}\n  namespace: {ns}\n"
                     for a in accounts]
            # What the minter's manifest grants in bastion-users: tokens for the accounts
            # here, create and delete of Secrets (never get, list or watch).
            docs.append(f"""apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: pam-kubeconfig-minter
  namespace: {ns}
rules:
- apiGroups: ['']
  resources: [serviceaccounts/token]
  verbs: [create]
- apiGroups: ['']
  resources: [secrets]
  verbs: [create, delete]
""")
            docs.append(f"""apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: pam-kubeconfig-minter
  namespace: {ns}
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: Role
  name: pam-kubeconfig-minter
subjects:
- apiGroup: rbac.authorization.k8s.io
  kind: User
  name: pam-kubeconfig
""")
            # The ServiceAccounts may watch ConfigMaps here: a `lock` step's watch streams (I6).
            docs.append(f"""apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: kcs-watch
  namespace: {ns}
rules:
- apiGroups: ['']
  resources: [configmaps]
  verbs: [get, list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: kcs-watch
  namespace: {ns}
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: Role
  name: kcs-watch
subjects:
- apiGroup: rbac.authorization.k8s.io
  kind: Group
  name: system:serviceaccounts:{ns}
""")
    return "---\n".join(docs)


@pytest.fixture(scope="module")
def world(cluster, installed, tmp_path_factory):
    ctx = harness.Ctx(cluster, installed, verbose=VERBOSE)  # first: it fails on a helper without --deadline, --now
    manifest = tmp_path_factory.mktemp("schedules") / "world.yaml"
    manifest.write_text(world_manifest())
    cluster.kubectl("apply", "-f", manifest)
    # The private mount namespaces mount over these: they must exist.
    made = []
    for d, mode in harness.PRIVATE_DIRS:
        if not os.path.isdir(d):
            os.makedirs(d, mode=int(mode, 8))
            made.append(d)
    yield ctx
    for d in reversed(made):
        try:
            os.rmdir(d)
        except OSError:
            pass


@pytest.fixture(scope="module")
def results(request, world):
    capture = request.config.pluginmanager.getplugin("capturemanager")

    def say(text):
        """Straight to the terminal, captured or not: a run always prints its seeds."""
        with capture.global_and_fixture_disabled():
            print(text, flush=True)

    chosen = [item.callspec.params["seed"] for item in request.session.items
              if getattr(item, "originalname", "") == "test_schedule" and hasattr(item, "callspec")]
    contiguous = chosen == list(range(chosen[0], chosen[0] + len(chosen))) if chosen else True
    seeds = f"{chosen[0]}..{chosen[-1]}" if chosen and contiguous else " ".join(map(str, chosen))
    say(f"\nschedule tier: {len(chosen)} schedules, seeds {seeds}, {WORKERS} at a time")
    if VERBOSE:
        for seed in chosen:
            say(sch.generate(seed).describe())
    start = time.monotonic()
    out = {}

    def one(seed):
        r = harness.Runner(world, sch.generate(seed)).run()
        status = "ok" if not r.violations else "FAIL " + ", ".join(sorted({c for c, _ in r.violations}))
        if r.error:
            status += " " + r.error
        if r.violations or VERBOSE:
            say(f"  seed {seed}: {status} ({r.took:.1f}s)")
        if VERBOSE:
            say(r.report())
        return seed, r

    # A schedule takes about 30 s; one that has not finished long after that is
    # reported (a harness that hangs must not hang `make test`) and cleaned up.
    pool = ThreadPoolExecutor(max_workers=WORKERS)
    futures = {pool.submit(one, seed): seed for seed in chosen}
    bound = (len(chosen) + WORKERS - 1) // WORKERS * 90 + 120
    done, stuck = wait(futures, timeout=bound)
    for f in done:
        seed, r = f.result()
        out[seed] = r
    for f in stuck:
        r = harness.Result(sch.generate(futures[f]))
        r.error = f"did not finish within {bound}s (the whole run's bound)"
        r.violations.append(("harness", r.error))
        out[futures[f]] = r
        say(f"  seed {futures[f]}: FAIL {r.error}")
    pool.shutdown(wait=False, cancel_futures=True)
    harness.clean_up_everything()
    took = time.monotonic() - start
    failed = sorted(s for s, r in out.items() if r.violations)
    by = {}
    for s in failed:
        for code in {c for c, _ in out[s].violations}:
            by.setdefault(code, []).append(s)
    total = {}
    for r in out.values():
        for k, v in r.counts.items():
            total[k] = total.get(k, 0) + v
    say("schedule tier counts: " + ", ".join(f"{k}={v}" for k, v in sorted(total.items())))
    say(f"schedule tier: {len(out)} schedules in {took:.0f}s, {len(failed)} failed"
        + "".join(f"\n  {code}: seeds {' '.join(map(str, seeds))}" for code, seeds in sorted(by.items())))
    hints = {}
    for s in failed:
        for e in harness.suspects(out[s].schedule, out[s].violations):
            hints.setdefault(e, []).append(s)
    for e, seeds in sorted(hints.items()):
        say(f"  looks like escape {e}: seeds {' '.join(map(str, seeds))}")
    return out


@pytest.mark.parametrize("seed", SEEDS, ids=lambda s: f"seed={s}")
def test_schedule(results, seed):
    r = results[seed]
    assert not r.violations, r.report()


def test_the_schedules_reached_every_invariant(results):
    """The run checked something: tokens were minted and checked for I1, open
    sessions for I2, and the faults, kills and stops happened."""
    total = {}
    for r in results.values():
        for k, v in r.counts.items():
            total[k] = total.get(k, 0) + v
    print(f"\nschedule tier counts: {total}")
    assert total.get("I1-tokens", 0) > 0, f"no token was ever minted and checked: {total}"
    assert total.get("I1-secret-checks", 0) == len(results)
    if len(results) >= 20:
        assert total.get("I2", 0) > 0, f"no session was ever checked for I2: {total}"
        assert total.get("kills", 0) > 0 and total.get("stopped", 0) > 0, total
    if len(results) >= 50:
        assert total.get("I3", 0) > 0, f"no grant that stopped mapping was ever checked for I3: {total}"
        # Issue 25's: an elevation's tokens judged once its certificates ended, a lock's.
        assert total.get("I5", 0) + total.get("I5-refresh", 0) > 0, f"no certificate's end was ever checked: {total}"
        assert total.get("I6", 0) + total.get("I6-revoke", 0) > 0, f"no lock was ever checked for I6: {total}"
    if len(results) >= 200:
        # Issue 23's faults happened: a close ran with the user database failing,
        # a DELETE was refused, a uid went to a new account, a token outlived its server.
        for what in ("nssdown", "refused-deletes", "reuse", "I2-moved", "I2-cert", "I6-streams"):
            assert total.get(what, 0) > 0, f"no {what} in {len(results)} schedules: {total}"
