"""What the spec's `tls` means for every piece of dbrs: mongod.conf, clients, tools, URIs, Mongo Express.

One place decides, so a member, the backup tools and Mongo Express can never
disagree about whether the set speaks TLS. Pure: strings and certificate
bytes in, values out; reading and writing the files is the caller's job.

The spec says `tls = "off" | "preferred" | "required"`. A running cluster
does not jump from plaintext to requireTLS: MongoDB's "Upgrade a Cluster to
Use TLS/SSL" (docs/manual/tutorial/upgrade-cluster-to-ssl) restarts every
member with `allowTLS`, then moves them to `preferTLS`, then `requireTLS`,
so at each step every member still accepts what the others send. `step`
names the mode of such a step; each step is one rolling restart.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from . import paths, pki
from .errors import InputError

SPEC_MODES = {"off": "disabled", "preferred": "preferTLS", "required": "requireTLS"}
SERVER_MODES = ("disabled", "allowTLS", "preferTLS", "requireTLS")   # MongoDB's documented order
CLUSTER_AUTH = {"keyfile": None, "x509": "x509"}                        # spec value -> security.clusterAuthMode
DISABLED_PROTOCOLS = "TLS1_0,TLS1_1"
RENEW_DAYS = pki.ROTATE_DAYS
MISSING_CA_FIX = ("copy ca.pem from the host `dbrs init` ran on, or re-run "
                  "`sudo dbrs-install --bundle bundle.dbrs --passphrase-file FILE` (it writes ca.pem)")


def check(tls, cluster_auth="keyfile", step=None):
    """The spec's tls and cluster_auth (and a rolling step) as mongod would accept them, else InputError."""
    if tls not in SPEC_MODES:
        raise InputError("cluster.tls", f"{str(tls)[:40]!r} is not a TLS setting",
                         'write "required" (new clusters), "preferred" or "off"')
    if cluster_auth not in CLUSTER_AUTH:
        raise InputError("cluster.cluster_auth", f"{str(cluster_auth)[:40]!r} is not a cluster authentication",
                         'write "keyfile" (the default) or "x509"')
    if step is not None and step not in SERVER_MODES:
        raise InputError("--step", f"{str(step)[:40]!r} is not a TLS mode", "use " + ", ".join(SERVER_MODES))
    mode = server_mode(tls, step)
    if cluster_auth == "x509" and mode in ("disabled", "allowTLS"):
        # mongod: "need to enable TLS via the tlsMode flag" / "cannot have x.509 cluster authentication in allowTLS mode"
        raise InputError("cluster.cluster_auth", f'"x509" needs TLS between the members, and {mode} does not give it',
                         'set tls = "required" (or "preferred"), roll it out, then switch cluster_auth to "x509"')


def server_mode(tls, step=None):
    """net.tls.mode for a member: the rolling step while one is under way, else what the spec says."""
    return step if step is not None else SPEC_MODES[tls]


def rolling_steps(current, target):
    """The modes to restart through, one rolling restart each, from `current` to `target` (server modes).

    Down is the same road back: members stop sending TLS (allowTLS) before
    any of them stops accepting it.
    """
    i, j = SERVER_MODES.index(current), SERVER_MODES.index(target)
    if i <= j:
        return list(SERVER_MODES[i + 1:j + 1])
    return list(reversed(SERVER_MODES[j:i]))


def parse_step(text, where=None):
    """The mode a step file holds; InputError naming the file when it holds something else."""
    mode = text.strip()
    if mode not in SERVER_MODES:
        where = where or str(paths.TLS_STEP)
        raise InputError(where, f"holds {mode[:40]!r}, not a TLS mode",
                         f"write one of {', '.join(SERVER_MODES)} there, or remove it when no `dbrs tls enable` "
                         "is under way")
    return mode


def read_step(path=None):
    """This host's rolling TLS step (`dbrs tls enable`), or None when no roll is under way here."""
    from pathlib import Path

    path = Path(path or paths.TLS_STEP)
    try:
        text = path.read_text(encoding="ascii", errors="replace")
    except FileNotFoundError:
        return None
    except OSError as e:
        raise InputError(str(path), f"cannot be read: {e.strerror}", "run as root") from None
    return parse_step(text, str(path))


def client_mode(spec, step_path=None):
    """The mode dbrs' clients on this host plan for: this host's rolling step, else the spec's.
    A step at preferTLS or above here means every member already accepts TLS (enable_step moves one at a time)."""
    return server_mode(spec.cluster.tls, read_step(step_path))


def mode_from_probe(plaintext_ok, tls_ok, up=True):
    """The TLS mode of a member that cannot be asked (a remote arbiter holds no users), from whether it took a
    plaintext hello and a TLS handshake; None when it took neither.

    allowTLS and preferTLS both take both: the answer is then the one that
    holds the roll back (allowTLS going up, preferTLS going down), so no step
    is taken on a guess; the arbiter's own host reads it from its files.
    """
    if plaintext_ok and tls_ok:
        return "allowTLS" if up else "preferTLS"
    if plaintext_ok:
        return "disabled"
    if tls_ok:
        return "requireTLS"
    return None


def clients_use_tls(mode):
    """Do dbrs' own clients dial TLS? Only once every member accepts it and prefers it:
    under allowTLS a member that has not restarted yet may still be plaintext-only."""
    return mode in ("preferTLS", "requireTLS")


@dataclass(frozen=True)
class ServerTLS:
    """The `net.tls` block of one member's mongod.conf (and security.clusterAuthMode), as the template renders it."""

    mode: str
    certificateKeyFile: str
    CAFile: str
    disabledProtocols: str = DISABLED_PROTOCOLS
    # Applications and dbrs' own tools authenticate with SCRAM over TLS and present no certificate;
    # without this a mongod with a CAFile rejects them ("no SSL certificate provided by peer").
    allowConnectionsWithoutCertificates: bool = True
    cluster_auth_mode: str | None = None


def server(tls, member_name, etc=paths.ETC, cluster_auth="keyfile", step=None):
    """The member's TLS settings, or None when TLS is off (mongod.conf then has no net.tls at all)."""
    check(tls, cluster_auth, step)
    mode = server_mode(tls, step)
    if mode == "disabled":
        return None
    return ServerTLS(mode=mode, certificateKeyFile=str(paths.member_cert(member_name, etc)),
                     CAFile=str(ca_path(etc)), cluster_auth_mode=CLUSTER_AUTH[cluster_auth])


def conf_modes(text):
    """(net.tls.mode, security.clusterAuthMode) a dbrs-rendered mongod.conf starts its member with;
    mongod's defaults ("disabled", "keyFile") where the file says nothing."""
    found, stack = {}, []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].rstrip()
        if not line.strip() or ":" not in line:
            continue
        depth = (len(line) - len(line.lstrip())) // 2
        key, _, value = line.strip().partition(":")
        del stack[depth:]
        stack.append(key)
        if value.strip():
            found[".".join(stack)] = value.strip().strip('"')
    return found.get("net.tls.mode", "disabled"), found.get("security.clusterAuthMode", "keyFile")


def transition_problem(member, before_text, after_text):
    """Why restarting a RUNNING member from `before_text` to `after_text` (its mongod.conf) would cut it off
    from the set, as InputError, else None.

    Each member must accept what the others send: the TLS mode moves one
    step of SERVER_MODES per rolling restart (`dbrs tls enable`), and the
    cluster authentication keyFile -> x509 needs the sendKeyFile/sendX509
    roll, which dbrs does not do on a running set.
    """
    (mode0, auth0), (mode1, auth1) = conf_modes(before_text), conf_modes(after_text)
    if auth0 != auth1:
        return InputError("cluster.cluster_auth", f"member {member} runs with clusterAuthMode {auth0}; restarting it "
                          f"with {auth1} while the others run cut it off from the set (a rolling change goes through "
                          "sendKeyFile and sendX509, which dbrs does not do)",
                          "put cluster_auth back, or stop every member of the set (`sudo systemctl stop "
                          "'dbrs-mongod@*'` on each host) and run dbrs-install on each host; nothing was changed")
    if mode0 in SERVER_MODES and mode1 in SERVER_MODES:
        i, j = SERVER_MODES.index(mode0), SERVER_MODES.index(mode1)
        if abs(i - j) > 1:
            was = {v: k for k, v in SPEC_MODES.items()}.get(mode0)
            back = f'set cluster.tls back to "{was}"' if was else "put cluster.tls back"
            to = {v: k for k, v in SPEC_MODES.items()}[mode1]
            return InputError("cluster.tls", f"member {member} runs with net.tls.mode {mode0}; restarting it at {mode1} "
                              f"skips {' and '.join(rolling_steps(mode0, mode1)[:-1])}, which cuts it off from the "
                              "members that have not restarted yet",
                              f"{back} and run `sudo dbrs tls enable --to {to}` on each host (one rolling restart per "
                              "mode; it writes the spec at the end); nothing was changed")
    return None


def guard_transitions(changes, running, confs):
    """Before apply: refuse a mongod.conf change that would cut a running member off (transition_problem).
    `confs` {mongod.conf path: member name} for this run's members; `running` the names whose mongod runs."""
    for c in changes:
        member = confs.get(getattr(c.item, "path", None))     # users, packages, units carry no path
        before = c.before
        if member in running and c.changed and before is not None and before.exists and before.content is not None:
            problem = transition_problem(member, before.content.decode(errors="replace"),
                                         c.item.content.decode(errors="replace"))
            if problem:
                raise problem


def ca_path(etc=paths.ETC):
    """The CA certificate of the cluster whose spec lives in `etc` (paths.CA_CERT for /etc/dbrs)."""
    return paths.P(etc) / paths.CA_CERT.name


def client_kwargs(mode, ca_file=paths.CA_CERT):
    """pymongo.MongoClient keyword arguments for a server mode: TLS verified against the cluster CA."""
    if not clients_use_tls(mode):
        return {}
    return {"tls": True, "tlsCAFile": str(ca_file)}


def tool_args(mode, ca_file=paths.CA_CERT):
    """mongodump/mongorestore arguments. mongo-tools 100.10 spell TLS `--ssl --sslCAFile`
    (common/options/options.go, struct SSL); they have no `--tls`/`--tlsCAFile` flags."""
    if not clients_use_tls(mode):
        return []
    return ["--ssl", f"--sslCAFile={ca_file}"]


def uri_params(mode, ca_file=paths.CA_CERT):
    """What `dbrs uri` appends to a connection string: `&tls=true&tlsCAFile=...` (the path percent-escaped)."""
    if not clients_use_tls(mode):
        return ""
    return f"&tls=true&tlsCAFile={quote(str(ca_file), safe='/')}"


def express_env(mode, ca_file=paths.CA_CERT):
    """Mongo Express 1.0.0's variables (config.default.js): ssl on, the CA file, and validation stated
    explicitly (its driver option sslValidate is what rejects a certificate of another CA)."""
    if not clients_use_tls(mode):
        return {}
    return {"ME_CONFIG_MONGODB_SSL": "true", "ME_CONFIG_MONGODB_SSLVALIDATE": "true",
            "ME_CONFIG_MONGODB_CA_FILE": str(ca_file)}


# ------------------------------------------------------------------ certificates

def member_names(host, addresses=(), local=True):
    """What a member's certificate must answer to: its host, the addresses it resolves to, and (for the
    tools and dbrs itself, which reach a local member at 127.0.0.1) the loopback names."""
    names = [host, *addresses]
    if local:
        names += ["127.0.0.1", "localhost"]
    dns, ips = pki.split_names(names)
    return [*dns, *(str(i) for i in ips)]


def ca_problem(pem):
    """None when a CA file holds certificates that can be read (the first signs), else what is wrong with it."""
    certs = pki.split_pem(pem)
    if not certs:
        return "holds no certificate"
    for c in certs:
        try:
            pki.inspect(c)
        except ValueError:
            return "holds a certificate that cannot be read"
    return None


def certificate_problem(cert_pem, ca_cert_pem, names, now, renew_days=RENEW_DAYS, also_trusted=(), key_file=False):
    """Why a member certificate must be (re)issued, or None when the one on disk will do.

    Reasons: none yet, it names other hosts than the member is reached by, it
    was signed by another CA (a re-initialised cluster or a CA roll), or it
    expires within `renew_days`. A certificate of a CA in `also_trusted` (the
    old CA while a roll overlaps) will do: it is `dbrs tls rotate`'s to replace.
    """
    if not cert_pem:
        return "no certificate yet"
    try:
        info = pki.inspect(cert_pem)
    except ValueError:
        return "the file holds no readable certificate"
    want_dns, want_ips = pki.split_names(names)
    have_dns = {d.lower() for d in info.dns}
    if {d.lower() for d in want_dns} != have_dns or set(want_ips) != set(info.ips):
        shown = ", ".join(sorted(info.dns) + [str(i) for i in info.ips]) or "nothing"
        return f"it names {shown}, not {', '.join(want_dns + [str(i) for i in want_ips])}"
    if not any(pki.signed_by(cert_pem, c) for c in (ca_cert_pem, *also_trusted)):
        return "it was signed by another CA"
    left = info.days_left(now)
    if left < 0:
        return f"it expired {-left:.0f} days ago"
    if left < renew_days:
        return f"it expires in {left:.0f} days"
    if key_file and not pki.key_matches(cert_pem):
        return "its private key is missing or belongs to another certificate"
    return None


def certificate_state(label, path, cert_pem, ca_cert_pem, now, renew_days=RENEW_DAYS, required=True, key_file=False):
    """(label, path, days left or None, problem or None) for `dbrs tls status`; `ca_cert_pem` None for the CA.

    A member without a certificate is a problem only when its mongod needs one (`required`: TLS is on).
    """
    if cert_pem is None:
        return label, path, None, "no certificate, and TLS is on: mongod cannot start" if required else None
    try:
        info = pki.inspect(cert_pem)
    except ValueError:
        return label, path, None, "the file holds no readable certificate"
    left = info.days_left(now)
    trusted = pki.split_pem(ca_cert_pem) or [ca_cert_pem] if ca_cert_pem is not None else []
    if ca_cert_pem is not None and not any(pki.signed_by(cert_pem, c) for c in trusted):
        return label, path, left, "signed by another CA than the cluster's: clients and members refuse it"
    if left < 0:
        return label, path, left, f"EXPIRED {-left:.0f} days ago: clients and members refuse it"
    if left < renew_days:
        return label, path, left, f"expires in {left:.0f} days (renew before {renew_days} days are left)"
    if key_file and not pki.key_matches(cert_pem):
        return label, path, left, "its private key is missing or belongs to another certificate: mongod cannot start TLS"
    return label, path, left, None


def member_certificate(ca, cluster, host, addresses, current_pem, now):
    """(pki.Issued to install, why) when the member needs a new certificate, else (None, None).

    `current_pem` is what its member.pem holds now (None when there is none);
    `ca` the cluster CA with its key (from the bundle or the init host). While a
    CA roll overlaps (ca.pem: new, then old) a certificate of the old CA stays:
    re-issuing it here would present the new CA to members that may not trust it yet.
    """
    names = member_names(host, addresses)
    signer, *overlap = pki.split_pem(ca.cert_pem) or [ca.cert_pem]
    why = certificate_problem(current_pem, signer, names, now, also_trusted=overlap, key_file=True)
    if why is None:
        return None, None
    return pki.issue_member(ca, cluster, host, names, now), why
