// The STS and EKS stand-in. It knows a few principals (access keys with their
// secrets and session tokens, roles, a web identity token, clusters) from a JSON
// file the test writes, and accepts a call only when the AWS SDK for Go's own
// SigV4 signer, given that principal's secret, computes the signature the call
// carries, over the host the call names, within 15 minutes of its date.
package main

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"sigs.k8s.io/aws-iam-authenticator/pkg/endpoints"
)

type key struct {
	Secret       string `json:"secret"`
	SessionToken string `json:"session_token,omitempty"`
	Arn          string `json:"arn"` // "{partition}" is replaced by the partition of the host asked
	UserID       string `json:"user_id"`
}

type role struct {
	AccessKeyID  string `json:"access_key_id"`
	Secret       string `json:"secret"`
	SessionToken string `json:"session_token"`
	UserID       string `json:"user_id"` // AROA...
}

type cluster struct {
	Endpoint string `json:"endpoint"`
	CA       string `json:"ca"` // base64 PEM
	Arn      string `json:"arn"`
}

type principals struct {
	Keys        map[string]key     `json:"keys"`
	Roles       map[string]role    `json:"roles"`
	WebIdentity string             `json:"web_identity_token"`
	Clusters    map[string]cluster `json:"clusters"`
	Account     string             `json:"account"`
}

type awsStandin struct {
	p   principals
	log *eventLog
	mu  sync.Mutex
	// an assumed role's key -> the ARN its GetCallerIdentity answers
	assumed map[string]string
}

func runAWS(args []string) error {
	fs := newFlags("aws")
	listen := fs.String("listen", "127.0.0.1:0", "address")
	cert := fs.String("cert", "", "serving certificate")
	keyFile := fs.String("key", "", "serving key")
	pfile := fs.String("principals", "", "JSON file of keys, roles and clusters")
	logFile := fs.String("log", "", "JSON lines of calls")
	if err := fs.Parse(args); err != nil {
		return err
	}
	raw, err := os.ReadFile(*pfile)
	if err != nil {
		return err
	}
	s := &awsStandin{assumed: map[string]string{}}
	if err := json.Unmarshal(raw, &s.p); err != nil {
		return fmt.Errorf("%s: %v", *pfile, err)
	}
	if s.log, err = openLog(*logFile); err != nil {
		return err
	}
	return serveTLS(*listen, *cert, *keyFile, s)
}

// partitionOf names the partition whose STS/EKS domain the host is in.
func partitionOf(host, region string) string {
	if strings.HasPrefix(region, "us-gov-") {
		return endpoints.AwsUsGovPartitionID
	}
	best, bestLen := endpoints.AwsPartitionID, 0
	for _, p := range endpoints.PARTITIONS {
		for _, d := range []string{mustDomain(p), endpoints.GetSTSDualStackPartitionDomain(p)} {
			if d != "" && strings.HasSuffix(host, "."+d) && len(d) > bestLen && p != endpoints.AwsUsGovPartitionID {
				best, bestLen = p, len(d)
			}
		}
	}
	return best
}

func mustDomain(p string) string {
	d, _ := endpoints.GetSTSPartitionDomain(p)
	return d
}

// regionOfHost: sts.R.x, sts-fips.R.x, eks.R.x, eks-fips.R.x, fips.eks.R.x; the
// global sts.amazonaws.com signs for us-east-1. "" for an address (an endpoint
// URL pointed here, as a VPC endpoint is): any region is then its region.
func regionOfHost(host string) string {
	host = strings.Split(host, ":")[0]
	if net.ParseIP(host) != nil {
		return ""
	}
	if host == "sts.amazonaws.com" {
		return "us-east-1"
	}
	labels := strings.Split(host, ".")
	if len(labels) > 2 && labels[0] == "fips" {
		return labels[2]
	}
	if len(labels) > 1 {
		return labels[1]
	}
	return ""
}

type verdict struct {
	akid, region, service, partition string
	k                                key
}

func (s *awsStandin) fail(w http.ResponseWriter, ev map[string]any, status int, code, msg string) {
	ev["ok"] = false
	ev["error"] = code + ": " + msg
	s.log.write(ev)
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(status)
	fmt.Fprintf(w, "<ErrorResponse><Error><Type>Sender</Type><Code>%s</Code><Message>%s</Message></Error></ErrorResponse>",
		code, xmlEscape(msg))
}

func xmlEscape(s string) string {
	var b strings.Builder
	xml.EscapeText(&b, []byte(s))
	return b.String()
}

func (s *awsStandin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	ev := map[string]any{"method": r.Method, "host": r.Host, "path": r.URL.Path}
	if r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/clusters/") {
		s.describeCluster(w, r, ev)
		return
	}
	form := r.URL.Query()
	if r.Method == http.MethodPost {
		f, err := url.ParseQuery(string(body))
		if err != nil {
			s.fail(w, ev, 400, "MalformedInput", "the body is not a form")
			return
		}
		form = f
	}
	ev["action"] = form.Get("Action")
	switch {
	case r.Method == http.MethodGet && form.Get("Action") == "GetCallerIdentity":
		s.getCallerIdentity(w, r, ev)
	case r.Method == http.MethodPost && form.Get("Action") == "AssumeRole":
		s.assumeRole(w, r, body, form, ev)
	case r.Method == http.MethodPost && form.Get("Action") == "AssumeRoleWithWebIdentity":
		s.assumeRoleWithWebIdentity(w, form, ev)
	default:
		s.fail(w, ev, 400, "InvalidAction", "unsupported call")
	}
}

// checkScope: the credential scope names a known key, the host's region and
// the service, and the date is within 15 minutes.
func (s *awsStandin) checkScope(credential, amzDate, service, host string) (verdict, string) {
	parts := strings.Split(credential, "/")
	if len(parts) != 5 || parts[4] != "aws4_request" {
		return verdict{}, "malformed credential scope"
	}
	v := verdict{akid: parts[0], region: parts[2], service: parts[3]}
	k, ok := s.p.Keys[v.akid]
	if !ok {
		return v, "unknown access key " + v.akid
	}
	v.k = k
	if v.service != service {
		return v, "credential scope names service " + v.service
	}
	if want := regionOfHost(host); want != "" && v.region != want {
		return v, fmt.Sprintf("credential should be scoped to a valid region, not '%s' (host %s)", v.region, host)
	}
	when, err := time.Parse("20060102T150405Z", amzDate)
	if err != nil || parts[1] != amzDate[:8] {
		return v, "bad X-Amz-Date"
	}
	if d := time.Since(when); d > 15*time.Minute || d < -15*time.Minute {
		return v, "signature expired or not yet current"
	}
	v.partition = partitionOf(strings.Split(host, ":")[0], v.region)
	return v, ""
}

func equal(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// getCallerIdentity: a presigned GET (what an EKS token holds). The SDK signer
// presigns the same request (its query minus the signature, its signed headers)
// and the two signatures must agree.
func (s *awsStandin) getCallerIdentity(w http.ResponseWriter, r *http.Request, ev map[string]any) {
	q := r.URL.Query()
	given := q.Get("X-Amz-Signature")
	v, problem := s.checkScope(q.Get("X-Amz-Credential"), q.Get("X-Amz-Date"), "sts", r.Host)
	ev["akid"] = v.akid
	if problem != "" {
		s.fail(w, ev, 403, "SignatureDoesNotMatch", problem)
		return
	}
	if tok := q.Get("X-Amz-Security-Token"); !equal(tok, v.k.SessionToken) {
		s.fail(w, ev, 403, "InvalidClientTokenId", "the security token included in the request is invalid")
		return
	}
	q.Del("X-Amz-Signature")
	req, _ := http.NewRequest(http.MethodGet, "https://"+r.Host+r.URL.Path+"?"+q.Encode(), nil)
	for _, h := range strings.Split(q.Get("X-Amz-SignedHeaders"), ";") {
		if h != "host" {
			req.Header[http.CanonicalHeaderKey(h)] = r.Header.Values(h)
		}
	}
	when, _ := time.Parse("20060102T150405Z", q.Get("X-Amz-Date"))
	creds := aws.Credentials{AccessKeyID: v.akid, SecretAccessKey: v.k.Secret, SessionToken: v.k.SessionToken}
	signed, _, err := v4.NewSigner().PresignHTTP(context.Background(), creds, req, emptyHash, "sts", v.region, when)
	if err != nil {
		s.fail(w, ev, 500, "InternalFailure", err.Error())
		return
	}
	u, _ := url.Parse(signed)
	if !equal(u.Query().Get("X-Amz-Signature"), given) {
		s.fail(w, ev, 403, "SignatureDoesNotMatch",
			"The request signature we calculated does not match the signature you provided")
		return
	}
	arn := s.arnOf(v)
	ev["ok"], ev["arn"], ev["cluster_id"] = true, arn, r.Header.Get("x-k8s-aws-id")
	s.log.write(ev)
	out := map[string]any{"GetCallerIdentityResponse": map[string]any{
		"GetCallerIdentityResult": map[string]string{"Account": s.p.Account, "Arn": arn, "UserId": v.k.UserID},
		"ResponseMetadata":        map[string]string{"RequestId": "00000000-0000-0000-0000-000000000000"}}}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(out)
}

func (s *awsStandin) arnOf(v verdict) string {
	s.mu.Lock()
	arn, ok := s.assumed[v.akid]
	s.mu.Unlock()
	if !ok {
		arn = v.k.Arn
	}
	return strings.ReplaceAll(arn, "{partition}", v.partition)
}

var emptyHash = hex.EncodeToString(sha256.New().Sum(nil))

// checkHeaderSignature: a header-signed call (AssumeRole, DescribeCluster). The
// SDK signer signs the same method, path, signed headers and body.
func (s *awsStandin) checkHeaderSignature(r *http.Request, body []byte, service string) (verdict, string) {
	auth := r.Header.Get("Authorization")
	const algo = "AWS4-HMAC-SHA256 "
	if !strings.HasPrefix(auth, algo) {
		return verdict{}, "missing or unsigned Authorization"
	}
	fields := authFields(auth)
	v, problem := s.checkScope(fields["Credential"], r.Header.Get("X-Amz-Date"), service, r.Host)
	if problem != "" {
		return v, problem
	}
	if !equal(r.Header.Get("X-Amz-Security-Token"), v.k.SessionToken) {
		return v, "the security token included in the request is invalid"
	}
	signedList := strings.Split(fields["SignedHeaders"], ";")
	req, _ := http.NewRequest(r.Method, "https://"+r.Host+r.URL.RequestURI(), nil)
	for _, h := range signedList {
		switch h {
		case "host", "x-amz-date", "x-amz-security-token":
		default:
			req.Header[http.CanonicalHeaderKey(h)] = r.Header.Values(h)
		}
	}
	when, _ := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
	sum := sha256.Sum256(body)
	creds := aws.Credentials{AccessKeyID: v.akid, SecretAccessKey: v.k.Secret, SessionToken: v.k.SessionToken}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), service, v.region,
		when); err != nil {
		return v, err.Error()
	}
	ours := authFields(req.Header.Get("Authorization"))
	if !equal(ours["Signature"], fields["Signature"]) || ours["SignedHeaders"] != fields["SignedHeaders"] {
		return v, "The request signature we calculated does not match the signature you provided"
	}
	return v, ""
}

// authFields splits "AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...".
func authFields(auth string) map[string]string {
	fields := map[string]string{}
	auth = strings.TrimPrefix(auth, "AWS4-HMAC-SHA256 ")
	for _, f := range strings.Split(auth, ",") {
		if kv := strings.SplitN(strings.TrimSpace(f), "=", 2); len(kv) == 2 {
			fields[kv[0]] = kv[1]
		}
	}
	return fields
}

type stsCredentials struct {
	AccessKeyID     string `xml:"AccessKeyId"`
	SecretAccessKey string `xml:"SecretAccessKey"`
	SessionToken    string `xml:"SessionToken"`
	Expiration      string `xml:"Expiration"`
}

func (s *awsStandin) issue(w http.ResponseWriter, ev map[string]any, action, roleArn, session string) {
	rl, ok := s.p.Roles[roleArn]
	if !ok {
		s.fail(w, ev, 403, "AccessDenied", "not authorized to perform sts:"+action+" on "+roleArn)
		return
	}
	name := roleArn[strings.LastIndex(roleArn, "/")+1:]
	parts := strings.SplitN(roleArn, ":", 6)
	assumedArn := fmt.Sprintf("arn:%s:sts::%s:assumed-role/%s/%s", parts[1], parts[4], name, session)
	s.mu.Lock()
	s.assumed[rl.AccessKeyID] = assumedArn
	s.mu.Unlock()
	if _, known := s.p.Keys[rl.AccessKeyID]; !known {
		s.p.Keys[rl.AccessKeyID] = key{Secret: rl.Secret, SessionToken: rl.SessionToken, Arn: assumedArn,
			UserID: rl.UserID + ":" + session}
	}
	ev["ok"], ev["role_arn"], ev["session_name"], ev["issued"] = true, roleArn, session, rl.AccessKeyID
	s.log.write(ev)
	c := stsCredentials{rl.AccessKeyID, rl.Secret, rl.SessionToken,
		time.Now().Add(time.Hour).UTC().Format("2006-01-02T15:04:05Z")}
	b, _ := xml.Marshal(c)
	w.Header().Set("Content-Type", "text/xml")
	fmt.Fprintf(w, "<%sResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><%sResult>%s"+
		"<AssumedRoleUser><Arn>%s</Arn><AssumedRoleId>%s:%s</AssumedRoleId></AssumedRoleUser></%sResult>"+
		"<ResponseMetadata><RequestId>1</RequestId></ResponseMetadata></%sResponse>",
		action, action, strings.Replace(string(b), "stsCredentials", "Credentials", 2), xmlEscape(assumedArn),
		rl.UserID, xmlEscape(session), action, action)
}

func (s *awsStandin) assumeRole(w http.ResponseWriter, r *http.Request, body []byte, form url.Values,
	ev map[string]any) {
	v, problem := s.checkHeaderSignature(r, body, "sts")
	ev["akid"] = v.akid
	if problem != "" {
		s.fail(w, ev, 403, "SignatureDoesNotMatch", problem)
		return
	}
	ev["duration"], ev["external_id"] = form.Get("DurationSeconds"), form.Get("ExternalId")
	s.issue(w, ev, "AssumeRole", form.Get("RoleArn"), form.Get("RoleSessionName"))
}

// AssumeRoleWithWebIdentity is not signed: the web identity token is the proof.
func (s *awsStandin) assumeRoleWithWebIdentity(w http.ResponseWriter, form url.Values, ev map[string]any) {
	if s.p.WebIdentity == "" || !equal(form.Get("WebIdentityToken"), s.p.WebIdentity) {
		s.fail(w, ev, 400, "InvalidIdentityToken", "the web identity token is not valid")
		return
	}
	s.issue(w, ev, "AssumeRoleWithWebIdentity", form.Get("RoleArn"), form.Get("RoleSessionName"))
}

func (s *awsStandin) describeCluster(w http.ResponseWriter, r *http.Request, ev map[string]any) {
	v, problem := s.checkHeaderSignature(r, nil, "eks")
	ev["akid"], ev["action"] = v.akid, "DescribeCluster"
	if problem != "" {
		s.fail(w, ev, 403, "InvalidSignatureException", problem)
		return
	}
	name := strings.TrimPrefix(r.URL.Path, "/clusters/")
	c, ok := s.p.Clusters[name]
	if !ok {
		ev["ok"], ev["error"] = false, "ResourceNotFoundException"
		s.log.write(ev)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(404)
		fmt.Fprintf(w, `{"message":"No cluster found for name: %s."}`, name)
		return
	}
	ev["ok"], ev["cluster"] = true, name
	s.log.write(ev)
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"cluster": map[string]any{
		"name": name, "arn": c.Arn, "endpoint": c.Endpoint, "status": "ACTIVE", "version": "1.33",
		"certificateAuthority": map[string]string{"data": c.CA}}})
}
