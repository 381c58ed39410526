// kc-aws-standin: the AWS side of the EKS tier.
//
//	kc-aws-standin aws     --listen ADDR --cert C --key K --principals FILE --log FILE
//	    STS (GetCallerIdentity presigned, AssumeRole, AssumeRoleWithWebIdentity) and
//	    EKS DescribeCluster, every signature recomputed with the AWS SDK for Go's signer.
//	kc-aws-standin webhook --listen ADDR --cert C --key K --cluster-id ID --partition P
//	                       --region R --sts ADDR --sts-ca CA --log FILE
//	    a TokenReview webhook for kube-apiserver that runs aws-iam-authenticator's
//	    pkg/token verifier; its STS calls (to the real host names) reach ADDR.
//	kc-aws-standin verify  --cluster-id ID --partition P --region R --sts ADDR --sts-ca CA
//	    the same verifier over tokens on stdin, one JSON verdict per line on stdout.
//
// Each server prints "listening on HOST:PORT" on stdout once it accepts.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: kc-aws-standin aws|webhook|verify [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "aws":
		err = runAWS(os.Args[2:])
	case "webhook":
		err = runWebhook(os.Args[2:])
	case "verify":
		err = runVerify(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "kc-aws-standin:", err)
		os.Exit(1)
	}
}

// eventLog appends one JSON object per line: what the tests assert on.
type eventLog struct {
	mu sync.Mutex
	f  *os.File
}

func openLog(path string) (*eventLog, error) {
	if path == "" {
		return &eventLog{}, nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	return &eventLog{f: f}, nil
}

func (l *eventLog) write(ev map[string]any) {
	if l.f == nil {
		return
	}
	ev["time"] = time.Now().UTC().Format(time.RFC3339Nano)
	b, _ := json.Marshal(ev)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.f.Write(append(b, '\n'))
}

// serveTLS listens on addr with the certificate and serves h until killed.
func serveTLS(addr, cert, key string, h http.Handler) error {
	pair, err := tls.LoadX509KeyPair(cert, key)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	fmt.Printf("listening on %s\n", ln.Addr())
	os.Stdout.Sync()
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second,
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}}
	return srv.Serve(tls.NewListener(ln, srv.TLSConfig))
}

// redirectSTS makes every HTTPS call of this process (the verifier's, which go
// to real STS host names) reach the stand-in at addr, trusting caFile alone. The
// request itself is untouched: its Host header stays the real one.
func redirectSTS(addr, caFile string) error {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return fmt.Errorf("%s holds no certificate", caFile)
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	http.DefaultTransport = &http.Transport{
		Proxy: nil,
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return dialer.DialContext(ctx, network, addr)
		},
		TLSClientConfig:     &tls.Config{RootCAs: pool, ServerName: host, MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout: 5 * time.Second,
	}
	return nil
}

func newFlags(name string) *flag.FlagSet {
	return flag.NewFlagSet(name, flag.ContinueOnError)
}
