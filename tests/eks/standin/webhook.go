// aws-iam-authenticator's own token verifier (pkg/token), as EKS runs it,
// behind a TokenReview webhook for kube-apiserver, and as a command that
// verifies tokens read from stdin.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"

	"sigs.k8s.io/aws-iam-authenticator/pkg/token"
)

type verifierFlags struct {
	clusterID, partition, region, sts, stsCA string
}

func (v *verifierFlags) register(fs interface {
	StringVar(*string, string, string, string)
}) {
	fs.StringVar(&v.clusterID, "cluster-id", "", "the cluster name tokens must be signed for")
	fs.StringVar(&v.partition, "partition", "aws", "the verifier's partition")
	fs.StringVar(&v.region, "region", "", "the verifier's region")
	fs.StringVar(&v.sts, "sts", "", "where the STS stand-in listens")
	fs.StringVar(&v.stsCA, "sts-ca", "", "the STS stand-in's CA")
}

func (v *verifierFlags) verifier() (token.Verifier, error) {
	if v.clusterID == "" || v.sts == "" || v.stsCA == "" {
		return nil, fmt.Errorf("--cluster-id, --sts and --sts-ca are required")
	}
	if err := redirectSTS(v.sts, v.stsCA); err != nil {
		return nil, err
	}
	return token.NewVerifier(v.clusterID, v.partition, v.region), nil
}

type verdictLine struct {
	OK          bool   `json:"ok"`
	Error       string `json:"error,omitempty"`
	ARN         string `json:"arn,omitempty"`
	AccessKeyID string `json:"access_key_id,omitempty"`
	Endpoint    string `json:"sts_endpoint,omitempty"`
}

func check(v token.Verifier, tok string) verdictLine {
	id, err := v.Verify(tok)
	if err != nil {
		return verdictLine{Error: err.Error()}
	}
	return verdictLine{OK: true, ARN: id.ARN, AccessKeyID: id.AccessKeyID, Endpoint: id.STSEndpoint}
}

func runVerify(args []string) error {
	fs := newFlags("verify")
	var vf verifierFlags
	vf.register(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	v, err := vf.verifier()
	if err != nil {
		return err
	}
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 64<<10), 64<<10)
	out := json.NewEncoder(os.Stdout)
	for in.Scan() {
		if err := out.Encode(check(v, in.Text())); err != nil {
			return err
		}
	}
	return in.Err()
}

type tokenReview struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Spec       struct {
		Token string `json:"token"`
	} `json:"spec"`
}

func runWebhook(args []string) error {
	fs := newFlags("webhook")
	var vf verifierFlags
	vf.register(fs)
	listen := fs.String("listen", "127.0.0.1:0", "address")
	cert := fs.String("cert", "", "serving certificate")
	keyFile := fs.String("key", "", "serving key")
	username := fs.String("username", "pam-kubeconfig", "the Kubernetes user a verified identity becomes")
	logFile := fs.String("log", "", "JSON lines of verdicts")
	if err := fs.Parse(args); err != nil {
		return err
	}
	v, err := vf.verifier()
	if err != nil {
		return err
	}
	log, err := openLog(*logFile)
	if err != nil {
		return err
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var review tokenReview
		raw, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err := json.Unmarshal(raw, &review); err != nil {
			http.Error(w, "not a TokenReview", http.StatusBadRequest)
			return
		}
		line := check(v, review.Spec.Token)
		status := map[string]any{"authenticated": line.OK}
		if line.OK {
			status["user"] = map[string]any{
				"username": *username,
				"uid":      "aws-iam-authenticator:" + line.AccessKeyID,
				"extra": map[string][]string{"arn": {line.ARN}, "accessKeyId": {line.AccessKeyID},
					"sts-endpoint": {line.Endpoint}},
			}
		} else {
			status["error"] = line.Error
		}
		log.write(map[string]any{"ok": line.OK, "error": line.Error, "arn": line.ARN,
			"access_key_id": line.AccessKeyID, "sts_endpoint": line.Endpoint})
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"apiVersion": review.APIVersion, "kind": "TokenReview",
			"status": status})
	})
	return serveTLS(*listen, *cert, *keyFile, h)
}
