"""Random schedules: a pure function of a seed, so that a failing seed replays
the same steps. A schedule is a few users on one bastion ("host") with one or
two clusters (each behind its own fault proxy), an initial mapping, and steps:

  open U / close U #k / crash U #k    a session through the real libpam (the
                                      session driver), or its process SIGKILLed
                                      (the session dies without close)
  nssdown U #k                        a close while the user database fails
                                      (getpwnam_r and getpwuid_r: EIO)
  refresh / gc                        the timer's commands, with --deadline
  stop U for S                        the user SIGSTOPs every process of theirs
  group U +/-, remap U Cn -> SA       what the admin changes (groups, config)
  delete U                            the account goes (userdel)
  reuse U                             the account goes (userdel -f, its sessions
                                      left running) and its uid is given to a
                                      new account with U's rules, which logs in
  move Cn                             the cluster's server changes (its other
                                      front URL to the same API server; once)
  fault Cn ..., heal Cn               API outages at the proxy: 5xx, delay,
                                      reset, silence, down, blackhole
  refuse Cn                           every DELETE of a Secret there answered
                                      403 until `heal Cn` (or the settle)
  garble U                            the user's state files become unreadable
  opencert U ttl S                    a session whose PAM environment carries
                                      SSH_AUTH_INFO_0 for a certificate of the
                                      schedule's CA valid S seconds more, with
                                      the principal that elevates (cert_sa)
  lock U [for S], unlock U            `pam-kubeconfig revoke U [--for Ss]`, and
                                      `unlock U` (local locks, no fleet)
  pause S

A user U is a seat: after `reuse U` its steps act on the new account, and its
close/crash/nssdown pick among the live sessions of every account it had.
open/opencert/close/nssdown/refresh/gc may run in the background (the next
step starts while they run); open/opencert/close/refresh/gc may be SIGKILLed at
a random moment (the helper's process group, or the session driver itself).
An `unlock` mostly names a user an earlier `lock` locked."""
import random
from dataclasses import dataclass, field

TIMEOUT_S = 2  # the module's timeout= for open and close
DEADLINE_MS = 3000  # --deadline of gc and refresh

# Per cluster n, namespaces made for it alone (two cluster entries of one
# schedule share the real API server, never a namespace, so never a Secret).
def sa_choices(c):
    return [f"kcs{c}-a/sa-1", f"kcs{c}-a/sa-2", f"kcs{c}-b/sa-3"]


def admin_sa(c):
    return f"kcs{c}-b/admin"


def cert_sa(c):
    """What a valid certificate elevates to (the first rule of every cluster):
    no other rule names it, so a token of it is a certificate's."""
    return f"kcs{c}-b/elevated"


CERT_PRINCIPAL = "kcs-elevate"


PATHS = [("POST", r"/serviceaccounts/[^/]+/token$"), ("POST", r"/secrets$"), ("DELETE", r"/secrets/"),
         ("GET", r"."), (".*", r".")]

TOKEN_PATH = PATHS[0][1]
WEIGHTS = {"open": 20, "close": 12, "crash": 3, "refresh": 9, "gc": 7, "stop": 6, "group": 4, "remap": 8,
           "delete": 1.5, "fault": 11, "heal": 5, "garble": 1.5, "pause": 3,
           # issue 23's faults: rare, as the account and config changes above are
           "nssdown": 2, "refuse": 2, "reuse": 1.5, "move": 1.5,
           # sequences of the above, so that the races worth having happen often
           "race": 4, "late_delete": 4,
           # issue 25: certificates that end within the schedule (or outlast it), the kill switch
           "opencert": 7, "lock": 3, "unlock": 2}


@dataclass
class Step:
    op: str
    user: int = None
    cluster: int = None
    k: int = 0  # which of the user's live sessions (mod their number)
    bg: bool = False
    gap: float = 0.0  # seconds to the next step when in the background
    kill: tuple = None  # ("helper" | "driver", seconds after the start)
    arg: dict = field(default_factory=dict)

    def __str__(self):
        u = f" u{self.user}" if self.user is not None else ""
        c = f" c{self.cluster}" if self.cluster is not None else ""
        s = {"open": f"open{u}", "close": f"close{u} #{self.k}", "crash": f"crash{u} #{self.k} (SIGKILL the driver)",
             "nssdown": f"nssdown{u} #{self.k} (close with the user database failing)",
             "refuse": f"refuse{c} (DELETE of Secrets: 403)",
             "reuse": f"reuse{u} (userdel -f; its uid to a new account, which logs in)",
             "move": f"move{c} (its server: the other front URL)",
             "refresh": "refresh" + (f" --now u{self.arg['now']}" if self.arg.get("now") is not None else ""),
             "gc": "gc", "stop": f"stop{u} for {self.arg.get('secs', 0):.2f}s",
             "group": f"group{u} {'+' if self.arg.get('add') else '-'}",
             "remap": f"remap{u}{c} -> {self.arg.get('sa') or 'unmapped'}"
                      if "sa" in self.arg else f"group rule{c} {'on' if self.arg.get('on') else 'off'}",
             "delete": f"delete account{u}", "heal": f"heal{c}", "garble": f"garble{u}",
             "opencert": f"opencert{u} ttl {self.arg.get('ttl')}s",
             "lock": f"lock{u}" + (f" for {self.arg['for']}s" if self.arg.get("for") else ""),
             "unlock": f"unlock{u}",
             "pause": f"pause {self.arg.get('secs', 0):.2f}s"}.get(self.op)
        if self.op == "fault":
            a = self.arg
            if a["kind"] in ("down", "blackhole"):
                s = f"fault{c}: {a['kind']}"
            else:
                extra = {"status": f" {a.get('status')}", "delay": f" {a.get('delay', 0):.2f}s"}.get(a["kind"], "")
                if a["kind"] == "delay" and a.get("status"):
                    extra += f" then {a['status']}"
                times = f" x{a['times']}" if a.get("times") else ""
                s = f"fault{c}: {a['kind']}{extra} {a['method']} {a['path']}{times}"
        if self.kill:
            s += f" [SIGKILL {self.kill[0]} at {self.kill[1] * 1000:.0f}ms]"
        if self.bg:
            s = f"bg {s} (+{self.gap * 1000:.0f}ms)"
        return s


@dataclass
class Schedule:
    seed: int
    n_users: int
    n_clusters: int
    user_rule: list  # [user][cluster] -> "ns/name" or None
    group_rule: list  # [cluster] -> whether the group maps to the admin there
    member: list  # [user] -> in the group at the start
    steps: list

    def describe(self):
        lines = [f"schedule {self.seed}: {self.n_users} users, {self.n_clusters} clusters"]
        for u in range(self.n_users):
            m = ", ".join(f"c{c}: {self.user_rule[u][c] or 'unmapped'}" for c in range(self.n_clusters))
            lines.append(f"  u{u}: {m}{' (in the group)' if self.member[u] else ''}")
        lines.append("  group rule: " + ", ".join(f"c{c}: {'on' if on else 'off'}"
                                                for c, on in enumerate(self.group_rule)))
        lines += [f"  {i + 1:2}. {s}" for i, s in enumerate(self.steps)]
        return "\n".join(lines)

    def kinds(self):
        return {s.op for s in self.steps}


def _op_modifiers(rng, step, driver_op):
    if rng.random() < 0.35:
        step.bg = True
        step.gap = round(rng.uniform(0.0, 0.4), 3)
    if rng.random() < 0.15:
        # Most runs take 0.1-0.4 s: a moment inside one, mostly.
        target = rng.choice(["helper", "driver"]) if driver_op else "helper"
        step.kill = (target, round(rng.uniform(0.0, 0.3), 3))


def _fault(rng, step):
    kind = rng.choices(["status", "delay", "reset", "silence", "down", "blackhole"], [35, 25, 10, 12, 10, 8])[0]
    step.arg = {"kind": kind}
    if kind in ("down", "blackhole"):
        return
    method, path = rng.choice(PATHS)
    step.arg.update(method=method, path=path, times=rng.choice([None, None, 1, 2]))
    if kind == "status":
        step.arg["status"] = rng.choice([500, 503])
    elif kind == "delay":
        step.arg["delay"] = round(rng.uniform(0.3, 2.5), 3)
        if rng.random() < 0.25:
            step.arg["status"] = rng.choice([500, 503])


def _race(rng, u, c):
    """A login whose token request fails late, while the user logs out."""
    return [Step("fault", cluster=c, arg={"kind": "delay", "method": "POST", "path": TOKEN_PATH,
                                          "delay": round(rng.uniform(0.3, 1.0), 3), "status": 500, "times": 1}),
            Step("open", user=u, bg=True, gap=round(rng.uniform(0.05, 0.25), 3)),
            Step("close", user=u, k=rng.randrange(3))]


def _late_delete(rng, u, c):
    """A logout's DELETE that arrives after the next login re-created the Secret."""
    return [Step("fault", cluster=c, arg={"kind": "delay", "method": "DELETE", "path": r"/secrets/",
                                          "delay": round(rng.uniform(1.5, 2.5), 3), "times": 1}),
            Step("close", user=u, k=rng.randrange(3), bg=True, gap=round(rng.uniform(0.05, 0.2), 3)),
            Step("open", user=u)]


def _stop_during(rng, u, n_users):
    """The user stops their processes, and something of root's runs for them."""
    op = rng.choice(["close", "open", "refresh", "gc"])
    s = Step(op, user=u if op in ("open", "close") else None, k=rng.randrange(3))
    if op == "refresh" and rng.random() < 0.5:
        s.arg["now"] = u
    return s


def generate(seed):
    rng = random.Random(seed)
    n_users = rng.choice([2, 2, 3])
    n_clusters = rng.choice([1, 2, 2])
    user_rule = [[rng.choice(sa_choices(c) + [sa_choices(c)[0]]) for c in range(n_clusters)]
                 for _ in range(n_users)]
    group_rule = [rng.random() < 0.7 for _ in range(n_clusters)]
    member = [rng.random() < 0.3 for _ in range(n_users)]
    steps = [Step("open", user=rng.randrange(n_users)) for _ in range(rng.choice([1, 2]))]
    ops, weights = zip(*WEIGHTS.items())
    moved = set()
    locked = []
    for _ in range(rng.randint(6, 12)):
        op = rng.choices(ops, weights)[0]
        s = Step(op, user=rng.randrange(n_users))
        if op == "race":
            steps += _race(rng, s.user, rng.randrange(n_clusters))
            continue
        if op == "late_delete":
            steps += _late_delete(rng, s.user, rng.randrange(n_clusters))
            continue
        if op in ("open", "close"):
            s.k = rng.randrange(3)
            _op_modifiers(rng, s, True)
        elif op == "opencert":
            # Mostly a certificate that ends before the schedule settles (I5), at times one that
            # outlasts it (I2 holds the session to the elevated account).
            s.arg["ttl"] = rng.randint(1, 5) if rng.random() < 0.75 else rng.randint(60, 120)
            _op_modifiers(rng, s, True)
        elif op == "lock":
            if rng.random() < 0.35:
                s.arg["for"] = rng.randint(2, 8)
            locked.append(s.user)
        elif op == "unlock" and locked and rng.random() < 0.8:
            s.user = rng.choice(locked)
        elif op == "nssdown":
            s.k = rng.randrange(3)
            _op_modifiers(rng, s, True)
            s.kill = None  # a kill would make it a kill: the close runs to its end
        elif op == "crash":
            s.k = rng.randrange(3)
        elif op in ("refresh", "gc"):
            s.user = None
            if op == "refresh" and rng.random() < 0.3:
                s.arg["now"] = rng.randrange(n_users)
            _op_modifiers(rng, s, False)
        elif op == "stop":
            s.arg["secs"] = round(rng.uniform(0.3, 2.5), 3)
            if rng.random() < 0.6:
                steps += [s, _stop_during(rng, s.user, n_users)]
                continue
        elif op == "group":
            s.arg["add"] = rng.random() < 0.5
        elif op == "remap":
            s.cluster = rng.randrange(n_clusters)
            if rng.random() < 0.15:
                s.user = None
                s.arg["on"] = rng.random() < 0.5
            else:
                s.arg["sa"] = rng.choice(sa_choices(s.cluster) + [None])
        elif op in ("fault", "heal", "refuse"):
            s.user = None
            s.cluster = rng.randrange(n_clusters)
            if op == "fault":
                _fault(rng, s)
        elif op == "move":
            # Once per cluster: every token minted before it was minted under the
            # old server, which the cluster never names again.
            s.user = None
            s.cluster = rng.randrange(n_clusters)
            if s.cluster in moved:
                continue
            moved.add(s.cluster)
        elif op == "pause":
            s.user = None
            s.arg["secs"] = round(rng.uniform(0.1, 1.0), 3)
        steps.append(s)
    return Schedule(seed, n_users, n_clusters, user_rule, group_rule, member, steps)
