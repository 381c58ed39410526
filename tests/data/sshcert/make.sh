#!/usr/bin/env bash
# Regenerates the OpenSSH certificate fixtures of tests/unit/test_sshcert.c and
# the seed corpus of tests/fuzz/fuzz_sshcert.c with the real ssh-keygen (and
# python3 for the few a CA would never sign: sk-* keys, a flipped byte).
# Keys and certificates are new each run; the tests rely on what they say, not
# their bytes. No private key is kept. Run from anywhere: tests/data/sshcert/make.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
corpus=$here/../../fuzz/corpus/sshcert
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

key() { # name type [bits]
	ssh-keygen -q -t "$2" ${3:+-b "$3"} -N '' -C "$1" -f "$1"
}
for k in ca_ed25519:ed25519 ca_other:ed25519 user_ed25519:ed25519 user_rsa:rsa:2048; do
	IFS=: read -r n t b <<<"$k"
	key "$n" "$t" "$b"
done
for bits in 256 384 521; do
	key "ca_p$bits" ecdsa "$bits"
	key "user_p$bits" ecdsa "$bits"
done
key ca_rsa rsa 3072

# FIDO keys need a token to sign, not to be certified: their public halves are
# made by hand (PROTOCOL.u2f: the plain key's fields, then the application).
python3 - <<'EOF'
import base64, struct
def s(b): return struct.pack(">I", len(b)) + b
def fields(pub):
    blob = base64.b64decode(open(pub).read().split()[1])
    name_len = struct.unpack(">I", blob[:4])[0]
    return blob[4 + name_len:]
for name, plain, typ in (("user_sk_ed25519", "user_ed25519.pub", b"sk-ssh-ed25519@openssh.com"),
                         ("user_sk_p256", "user_p256.pub", b"sk-ecdsa-sha2-nistp256@openssh.com")):
    blob = s(typ) + fields(plain) + s(b"ssh:")
    open(name + ".pub", "w").write("%s %s %s\n" % (typ.decode(), base64.b64encode(blob).decode(), name))
EOF

window=20200101000000Z:20200102000000Z
sign() { # name ca userkey ssh-keygen-options...
	local name=$1 ca=$2 user=$3
	shift 3
	cp "$user.pub" "$name.pub"
	ssh-keygen -q -s "$ca" "$@" "$name.pub"
}
# Every certified key type, and every CA type and signature algorithm.
sign ed25519_by_ed25519 ca_ed25519 user_ed25519 -I alice@example -z 7 -n alice,k8s-admin -V "$window"
sign p256_by_p256 ca_p256 user_p256 -I alice@example -n alice,k8s-admin -V "$window"
sign p384_by_p384 ca_p384 user_p384 -I alice@example -n alice,k8s-admin -V "$window"
sign p521_by_p521 ca_p521 user_p521 -I alice@example -n alice,k8s-admin -V "$window"
sign rsa_by_rsa512 ca_rsa user_rsa -t rsa-sha2-512 -I alice@example -n alice,k8s-admin -V "$window"
sign ed25519_by_rsa256 ca_rsa user_ed25519 -t rsa-sha2-256 -I alice@example -n alice,k8s-admin -V "$window"
sign rsa_by_ed25519 ca_ed25519 user_rsa -I alice@example -n alice,k8s-admin -V "$window"
sign p256_by_p521 ca_p521 user_p256 -I alice@example -n alice,k8s-admin -V "$window"
# What must be refused.
sign ed25519_by_rsasha1 ca_rsa user_ed25519 -t ssh-rsa -I alice@example -n alice -V always:forever
sign host ca_ed25519 user_ed25519 -h -I bastion -n bastion.example.com -V always:forever
sign crit_unknown ca_ed25519 user_ed25519 -I alice -n alice -V always:forever -O critical:foo@example.com=bar
sign other_ca ca_other user_ed25519 -I alice -n alice -V always:forever
sign no_principals ca_ed25519 user_ed25519 -I nobody -V always:forever
sign sk_ed25519 ca_ed25519 user_sk_ed25519 -I alice -n alice -V always:forever
sign sk_p256 ca_ed25519 user_sk_p256 -I alice -n alice -V always:forever
sign tampered ca_ed25519 user_ed25519 -I tamper-me -n alice -V always:forever
# What must be accepted.
sign forever ca_ed25519 user_ed25519 -I bob@example -n bob -V always:forever
sign crit_known ca_ed25519 user_ed25519 -I alice -n alice -V always:forever \
	-O force-command=/bin/true -O source-address=10.0.0.0/8 -O verify-required
sign roles ca_p256 user_p256 -I bob@example -n bob,sre,k8s-admin -V always:forever

# One byte of the signed part changed: the key id "tamper-me" becomes "tamper-mf".
python3 - <<'EOF'
import base64
t, b64, c = open("tampered-cert.pub").read().split()
blob = base64.b64decode(b64)
assert blob.count(b"tamper-me") == 1
blob = blob.replace(b"tamper-me", b"tamper-mf")
open("tampered-cert.pub", "w").write("%s %s %s\n" % (t, base64.b64encode(blob).decode(), c))
EOF

rm -f "$here"/*.pub "$here"/*.fp "$here"/trusted_ca_keys
cp ./*-cert.pub "$here/"
for k in ca_ed25519 ca_p256 ca_p384 ca_p521 ca_rsa ca_other user_ed25519 user_p256 user_rsa; do
	cp "$k.pub" "$here/"
	ssh-keygen -l -E sha256 -f "$k.pub" | awk '{print $2}' >"$here/$k.fp"
done
# sshd's TrustedUserCAKeys format, with what it tolerates; ca_other is not in it.
{
	echo "# CAs whose user certificates count here"
	echo
	cat ca_ed25519.pub
	printf '  cert-authority %s\n' "$(cat ca_p256.pub)"
	cat ca_p384.pub ca_p521.pub
	printf '\t%s\n' "$(cat ca_rsa.pub)"
} >"$here/trusted_ca_keys"

mkdir -p "$corpus"
for c in ed25519_by_ed25519 p521_by_p521 rsa_by_rsa512 ed25519_by_rsa256 crit_known roles sk_p256; do
	awk '{print $2}' "$c-cert.pub" | base64 -d >"$corpus/$c.bin"
done
printf 'publickey %s\nkeyboard-interactive/pam\npublickey %s\n' \
	"$(awk '{print $1, $2}' user_ed25519.pub)" "$(awk '{print $1, $2}' forever-cert.pub)" >"$corpus/authinfo.txt"
cp "$here/trusted_ca_keys" "$corpus/trusted_ca_keys.txt"
echo "fixtures in $here, seeds in $(cd "$corpus" && pwd)"
